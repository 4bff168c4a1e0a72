package main

import (
	"fmt"
	"strings"
)

// lineDiff is a longest-common-subsequence diff of two short texts (an
// object's YAML: hundreds of lines at most), printed like `diff -u`
// without headers: "  " common, "- " only in a, "+ " only in b, with
// `context` common lines around each change and "  ..." between hunks.
func lineDiff(a, b []string, context int) string {
	// lcs[i][j]: length of the longest common subsequence of a[i:], b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		mark byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			lines = append(lines, line{' ', a[i]})
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, line{'-', a[i]})
			i++
		default:
			lines = append(lines, line{'+', b[j]})
			j++
		}
	}
	show := make([]bool, len(lines))
	for k, l := range lines {
		if l.mark != ' ' {
			for c := max(0, k-context); c <= min(len(lines)-1, k+context); c++ {
				show[c] = true
			}
		}
	}
	var out strings.Builder
	gap := false
	for k, l := range lines {
		if !show[k] {
			gap = true
			continue
		}
		if gap && out.Len() > 0 {
			out.WriteString("    ...\n")
		}
		gap = false
		fmt.Fprintf(&out, "  %c %s\n", l.mark, l.text)
	}
	return strings.TrimRight(out.String(), "\n")
}
