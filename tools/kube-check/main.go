// Command kube-check checks Kubernetes manifests offline, with the API
// types compiled in (no schema is fetched at run time):
//
//	kube-check validate FILE...      strict-decode every document into its typed struct
//	kube-check compare [flags] A B   the same objects in two renderings (chart vs kustomize)
//	kube-check kustomize DIR         render a kustomization, like `kubectl kustomize DIR`
//
// scripts/kube-check.sh runs them on the Helm chart and the kustomize kits
// under deploy/. Every problem is printed to stderr and makes the exit
// status 1; usage errors make it 2.
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  kube-check validate FILE...
  kube-check compare [--only-left KIND/NAMESPACE/NAME]... [--only-right KIND/NAMESPACE/NAME]... LEFT RIGHT
  kube-check kustomize DIR
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "validate":
		err = runValidate(args)
	case "compare":
		err = runCompare(args)
	case "kustomize":
		err = runKustomize(args)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kube-check %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
