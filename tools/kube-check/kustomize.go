package main

import (
	"errors"
	"os"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// runKustomize prints what `kubectl kustomize DIR` prints, with the
// kustomize library this module pins, so that the check needs no kubectl
// (Debian's kubernetes-client is 1.20, whose kustomize v2 knows no
// `patches:`).
func runKustomize(args []string) error {
	if len(args) != 1 {
		return errors.New("one directory expected")
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), args[0])
	if err != nil {
		return err
	}
	out, err := resources.AsYaml()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}
