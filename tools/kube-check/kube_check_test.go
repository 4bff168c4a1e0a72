package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateReportsEachProblemWithItsDocument(t *testing.T) {
	decoder, err := strictDecoder()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := readDocuments("testdata/invalid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"", // a valid Service
		`document 2 (line 10) apps/v1 StatefulSet/typo: strict decoding error: unknown field "spec.replica"`,
		"document 3 (line 19) v1 Service/typeerr: json: cannot unmarshal string",
		`document 4 (line 26) example.com/v1 Widget/w: no kind "Widget" is registered`,
		`PrometheusRule/r: strict decoding error: unknown field "spec.groups[0].rules[0].fore"`,
		`document 6 (line 43): yaml: unmarshal errors`,
	}
	if len(docs) != len(want) {
		t.Fatalf("%d documents, want %d", len(docs), len(want))
	}
	for i, doc := range docs {
		err := validate(decoder, doc)
		switch {
		case want[i] == "" && err != nil:
			t.Errorf("document %d: %v", i+1, err)
		case want[i] != "" && (err == nil || !strings.Contains(err.Error(), want[i])):
			t.Errorf("document %d: got %v, want %q", i+1, err, want[i])
		}
	}
}

func write(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const kitService = `apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: ns
  labels: {app.kubernetes.io/name: em}
spec:
  selector: {app.kubernetes.io/name: em}
  ports: [{name: http, port: 9898}]
`

func TestCompareIgnoresOnlyTheChartsOwnLabels(t *testing.T) {
	chart := `---
# Source: a template
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: ns
  labels:
    app.kubernetes.io/name: em
    app.kubernetes.io/instance: r
    app.kubernetes.io/version: "1"
    app.kubernetes.io/managed-by: Helm
    helm.sh/chart: em-0.1.0
  annotations: {checksum/config: abc}
spec:
  selector: {app.kubernetes.io/name: em, app.kubernetes.io/instance: r}
  ports: [{name: http, port: 9898}]
`
	left, err := objectsByKey(write(t, "chart.yaml", chart))
	if err != nil {
		t.Fatal(err)
	}
	right, err := objectsByKey(write(t, "kit.yaml", kitService))
	if err != nil {
		t.Fatal(err)
	}
	if p := compareSets(left, right, "chart", "kit", nil, nil); len(p) > 0 {
		t.Fatalf("unexpected differences: %v", p)
	}

	other, err := objectsByKey(write(t, "other.yaml", strings.Replace(chart, "port: 9898", "port: 9899", 1)+
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: ns}\n"))
	if err != nil {
		t.Fatal(err)
	}
	problems := compareSets(other, right, "chart", "kit", nil, nil)
	if len(problems) != 2 ||
		!strings.Contains(problems[0], "ConfigMap/ns/extra: only in chart") ||
		!strings.Contains(problems[1], "Service/ns/api differs") {
		t.Fatalf("problems: %q", problems)
	}
	if !strings.Contains(problems[1], "  -     port: 9899") || !strings.Contains(problems[1], "  +     port: 9898") {
		t.Fatalf("the diff shows neither port: %s", problems[1])
	}
	// An expectation that no longer holds is a problem too.
	stale := compareSets(left, right, "chart", "kit", nil, []string{"Secret/ns/gone"})
	if len(stale) != 1 || !strings.Contains(stale[0], "Secret/ns/gone: expected in kit, missing") {
		t.Fatalf("stale expectation: %q", stale)
	}
}

func TestLineDiff(t *testing.T) {
	got := lineDiff(strings.Split("a\nb\nc\nd\ne\nf\ng", "\n"), strings.Split("a\nb\nc\nD\ne\nf\ng", "\n"), 1)
	want := "    c\n  - d\n  + D\n    e"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
