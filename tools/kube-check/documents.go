package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// document is one YAML document of a multi-document file.
type document struct {
	file  string
	index int // 1-based, counting only documents that hold an object
	line  int // where the document starts in the file, 1-based
	raw   []byte
}

func (d document) String() string {
	return fmt.Sprintf("%s: document %d (line %d)", d.file, d.index, d.line)
}

// readDocuments splits a file at its `---` lines and drops documents that
// hold nothing but comments and blank lines, as `helm template` and
// `kubectl kustomize` print them.
func readDocuments(file string) ([]document, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var docs []document
	var current bytes.Buffer
	start, line := 1, 0
	flush := func() error {
		raw := append([]byte(nil), current.Bytes()...)
		current.Reset()
		asJSON, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return fmt.Errorf("%s: document at line %d: %w", file, start, err)
		}
		if trimmed := strings.TrimSpace(string(asJSON)); trimmed != "null" && trimmed != "" {
			docs = append(docs, document{file: file, index: len(docs) + 1, line: start, raw: raw})
		}
		return nil
	}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for scanner.Scan() {
		line++
		text := scanner.Text()
		if isSeparator(text) {
			if err := flush(); err != nil {
				return nil, err
			}
			start = line + 1
			continue
		}
		current.WriteString(text)
		current.WriteByte('\n')
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return docs, nil
}

// isSeparator: a `---` line, optionally followed by a comment.
func isSeparator(line string) bool {
	rest, ok := strings.CutPrefix(strings.TrimRight(line, " \t"), "---")
	return ok && (rest == "" || strings.HasPrefix(strings.TrimSpace(rest), "#"))
}

// object is a document decoded without types: a JSON-like tree.
type object map[string]any

func (d document) object() (object, error) {
	asJSON, err := yaml.YAMLToJSONStrict(d.raw)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", d, err)
	}
	var obj object
	if err := json.Unmarshal(asJSON, &obj); err != nil {
		return nil, fmt.Errorf("%v: not a mapping: %w", d, err)
	}
	return obj, nil
}

func (o object) str(path ...string) string {
	var node any = map[string]any(o)
	for _, key := range path {
		m, ok := node.(map[string]any)
		if !ok {
			return ""
		}
		node = m[key]
	}
	s, _ := node.(string)
	return s
}

// key names an object as compare matches it: KIND/NAMESPACE/NAME, with
// "-" for a cluster-scoped (or unset) namespace.
func (o object) key() string {
	ns := o.str("metadata", "namespace")
	if ns == "" {
		ns = "-"
	}
	return fmt.Sprintf("%s/%s/%s", o.str("kind"), ns, o.str("metadata", "name"))
}
