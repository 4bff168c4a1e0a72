package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Labels the Helm chart puts on its objects (and into its selectors)
// that a kustomize kit has no counterpart for: removed from both sides
// before comparing. Every other label counts.
var chartOnlyLabels = []string{
	"helm.sh/chart",
	"app.kubernetes.io/managed-by",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
}

// Annotations removed likewise: the chart's `checksum/<file>` pod
// annotations, which restart pods when their ConfigMap changes.
var chartOnlyAnnotationPrefixes = []string{
	"checksum/",
}

// Maps whose keys are labels: an object's or a pod template's labels, and
// selectors (`matchLabels`, and a Service's `selector`, a plain map).
var labelMaps = map[string]bool{"labels": true, "matchLabels": true, "selector": true}

type keyList []string

func (k *keyList) String() string     { return strings.Join(*k, ",") }
func (k *keyList) Set(v string) error { *k = append(*k, v); return nil }

func runCompare(args []string) error {
	flags := flag.NewFlagSet("compare", flag.ContinueOnError)
	var onlyLeft, onlyRight keyList
	flags.Var(&onlyLeft, "only-left", "KIND/NAMESPACE/NAME expected in LEFT alone (repeatable)")
	flags.Var(&onlyRight, "only-right", "KIND/NAMESPACE/NAME expected in RIGHT alone (repeatable)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 2 {
		return errors.New("two files expected: LEFT RIGHT")
	}
	leftFile, rightFile := flags.Arg(0), flags.Arg(1)
	left, err := objectsByKey(leftFile)
	if err != nil {
		return err
	}
	right, err := objectsByKey(rightFile)
	if err != nil {
		return err
	}
	problems := compareSets(left, right, leftFile, rightFile, onlyLeft, onlyRight)
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s and %s differ (problems: %d)", leftFile, rightFile, len(problems))
	}
	fmt.Printf("%s = %s: %d objects the same", leftFile, rightFile, len(left)-len(onlyLeft))
	if n := len(onlyLeft) + len(onlyRight); n > 0 {
		fmt.Printf(" (%d expected on one side only)", n)
	}
	fmt.Println()
	return nil
}

func objectsByKey(file string) (map[string]object, error) {
	docs, err := readDocuments(file)
	if err != nil {
		return nil, err
	}
	objects := map[string]object{}
	for _, doc := range docs {
		obj, err := doc.object()
		if err != nil {
			return nil, err
		}
		key := obj.key()
		if _, dup := objects[key]; dup {
			return nil, fmt.Errorf("%v: %s appears twice", doc, key)
		}
		normalise(obj)
		objects[key] = obj
	}
	return objects, nil
}

// compareSets returns one readable problem per object that is missing or
// differs, and per expectation (--only-left/--only-right) that no longer holds.
func compareSets(left, right map[string]object, leftName, rightName string, onlyLeft, onlyRight []string) []string {
	var problems []string
	expectedAlone := func(key string, list []string) bool {
		for _, k := range list {
			if k == key {
				return true
			}
		}
		return false
	}
	for _, key := range sortedKeys(left) {
		r, ok := right[key]
		switch {
		case !ok && !expectedAlone(key, onlyLeft):
			problems = append(problems, fmt.Sprintf("%s: only in %s", key, leftName))
		case ok && expectedAlone(key, onlyLeft):
			problems = append(problems, fmt.Sprintf("%s: expected only in %s, but also in %s", key, leftName, rightName))
		case ok && !reflect.DeepEqual(left[key], r):
			problems = append(problems, fmt.Sprintf("%s differs (- %s, + %s):\n%s", key, leftName, rightName, diffObjects(left[key], r)))
		}
	}
	for _, key := range sortedKeys(right) {
		_, ok := left[key]
		if !ok && !expectedAlone(key, onlyRight) {
			problems = append(problems, fmt.Sprintf("%s: only in %s", key, rightName))
		} else if ok && expectedAlone(key, onlyRight) {
			problems = append(problems, fmt.Sprintf("%s: expected only in %s, but also in %s", key, rightName, leftName))
		}
	}
	for _, key := range onlyLeft {
		if _, ok := left[key]; !ok {
			problems = append(problems, fmt.Sprintf("%s: expected in %s, missing", key, leftName))
		}
	}
	for _, key := range onlyRight {
		if _, ok := right[key]; !ok {
			problems = append(problems, fmt.Sprintf("%s: expected in %s, missing", key, rightName))
		}
	}
	return problems
}

func sortedKeys(m map[string]object) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// normalise removes, anywhere in the tree, the chart-only labels from
// label maps and selectors and the chart-only annotations; a label or
// annotation map left empty is removed too.
func normalise(node any) {
	switch n := node.(type) {
	case map[string]any:
		for key, child := range n {
			if m, ok := child.(map[string]any); ok && (labelMaps[key] || key == "annotations") {
				for name := range m {
					if (labelMaps[key] && isChartOnlyLabel(name)) || (key == "annotations" && isChartOnlyAnnotation(name)) {
						delete(m, name)
					}
				}
				if len(m) == 0 {
					delete(n, key)
					continue
				}
			}
			normalise(child)
		}
	case object:
		normalise(map[string]any(n))
	case []any:
		for _, child := range n {
			normalise(child)
		}
	}
}

func isChartOnlyLabel(name string) bool {
	for _, l := range chartOnlyLabels {
		if name == l {
			return true
		}
	}
	return false
}

func isChartOnlyAnnotation(name string) bool {
	for _, p := range chartOnlyAnnotationPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// diffObjects prints both objects as YAML with sorted keys and returns
// their line diff, changed lines with two lines of context around them.
func diffObjects(a, b object) string {
	ya, errA := yaml.Marshal(map[string]any(a))
	yb, errB := yaml.Marshal(map[string]any(b))
	if errA != nil || errB != nil {
		return fmt.Sprintf("  (cannot print: %v %v)", errA, errB)
	}
	return lineDiff(strings.Split(string(ya), "\n"), strings.Split(string(yb), "\n"), 2)
}
