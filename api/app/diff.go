package app

import (
	"fmt"
	"strings"
	"time"

	"skiff.dev/skiff/api"
)

// diffContext is the number of unchanged lines shown around a change.
const diffContext = 3

// maxDiffCells bounds the work of the line matcher: past it, the changed
// middle of two very different documents is shown as removed then added.
const maxDiffCells = 4 << 20

// Diff returns a unified diff of the YAML forms of two Apps, as `skiff
// diff` shows it, or "" when they do not differ. Both are compared with
// defaults applied and without status and the metadata skiff sets (uid,
// generation, resourceVersion, creationTimestamp), so that the diff shows only what
// applying new over old would change. The headers name the App.
func Diff(old, new api.App) string {
	return UnifiedDiff(nonEmpty(old.Metadata.Name, "app")+" (old)", nonEmpty(new.Metadata.Name, "app")+" (new)",
		string(diffForm(old)), string(diffForm(new)))
}

// UnifiedDiff returns a unified diff (three lines of context) from text a
// to text b under the headers "--- aName" and "+++ bName", or "" when the
// texts are equal. An empty text diffs as a file with no lines, so a
// created or deleted document shows whole.
func UnifiedDiff(aName, bName, a, b string) string {
	al, bl := splitLines(a), splitLines(b)
	ops := diffLines(al, bl)
	changed := false
	for _, o := range ops {
		if o.kind != ' ' {
			changed = true
			break
		}
	}
	if !changed {
		return ""
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	writeHunks(&out, ops)
	return out.String()
}

// splitLines splits text into lines that keep their newline.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	l := strings.SplitAfter(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}

// diffForm is the YAML that Diff compares.
func diffForm(app api.App) []byte {
	c := Clone(app)
	SetDefaults(&c)
	c.Status = api.AppStatus{}
	c.Metadata.UID, c.Metadata.Generation, c.Metadata.ResourceVersion = "", 0, ""
	c.Metadata.CreationTimestamp = time.Time{}
	b, err := MarshalYAML(c)
	if err != nil {
		// An App always marshals; say so in the diff rather than hide it.
		return []byte("# " + err.Error() + "\n")
	}
	return b
}

// op is one line of an edit script: ' ' kept, '-' removed, '+' added.
type op struct {
	kind       byte
	line       string
	aPos, bPos int // 0-based positions before this line in a and b
}

// diffLines returns an edit script from a to b: the common prefix and
// suffix are kept, and the middle is matched by longest common
// subsequence when small enough.
func diffLines(a, b []string) []op {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []op
	for i := 0; i < pre; i++ {
		ops = append(ops, op{kind: ' ', line: a[i], aPos: i, bPos: i})
	}
	am, bm := a[pre:len(a)-suf], b[pre:len(b)-suf]
	ops = append(ops, middle(am, bm, pre)...)
	for i := 0; i < suf; i++ {
		ai, bi := len(a)-suf+i, len(b)-suf+i
		ops = append(ops, op{kind: ' ', line: a[ai], aPos: ai, bPos: bi})
	}
	return ops
}

// middle diffs the changed middle parts, which start at line off of both
// inputs.
func middle(a, b []string, off int) []op {
	var ops []op
	if len(a)*len(b) > maxDiffCells {
		for i, l := range a {
			ops = append(ops, op{kind: '-', line: l, aPos: off + i, bPos: off})
		}
		for j, l := range b {
			ops = append(ops, op{kind: '+', line: l, aPos: off + len(a), bPos: off + j})
		}
		return ops
	}
	// lcs[i][j] is the length of the longest common subsequence of a[i:]
	// and b[j:].
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
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			ops = append(ops, op{kind: ' ', line: a[i], aPos: off + i, bPos: off + j})
			i++
			j++
		case j < len(b) && (i == len(a) || lcs[i][j+1] > lcs[i+1][j]):
			ops = append(ops, op{kind: '+', line: b[j], aPos: off + i, bPos: off + j})
			j++
		default:
			ops = append(ops, op{kind: '-', line: a[i], aPos: off + i, bPos: off + j})
			i++
		}
	}
	return ops
}

// writeHunks writes the edit script as unified-diff hunks.
func writeHunks(out *strings.Builder, ops []op) {
	for start := 0; start < len(ops); {
		// Find the next change.
		for start < len(ops) && ops[start].kind == ' ' {
			start++
		}
		if start == len(ops) {
			return
		}
		// Extend the hunk while changes are within 2*context lines.
		end := start
		for last := start; last < len(ops); {
			end = last + 1
			next := end
			for next < len(ops) && ops[next].kind == ' ' {
				next++
			}
			if next == len(ops) || next-end > 2*diffContext {
				break
			}
			last = next
		}
		from := max(0, start-diffContext)
		to := min(len(ops), end+diffContext)
		aLen, bLen := 0, 0
		for _, o := range ops[from:to] {
			if o.kind != '+' {
				aLen++
			}
			if o.kind != '-' {
				bLen++
			}
		}
		fmt.Fprintf(out, "@@ -%s +%s @@\n", hunkRange(ops[from].aPos, aLen), hunkRange(ops[from].bPos, bLen))
		for _, o := range ops[from:to] {
			out.WriteByte(o.kind)
			out.WriteString(o.line)
			if !strings.HasSuffix(o.line, "\n") {
				out.WriteString("\n\\ No newline at end of file\n")
			}
		}
		start = to
	}
}

// hunkRange formats a hunk's start and length as unified diff does: the
// 1-based first line, or the line before an empty range.
func hunkRange(pos, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", pos)
	case 1:
		return fmt.Sprintf("%d", pos+1)
	}
	return fmt.Sprintf("%d,%d", pos+1, n)
}
