package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"

	"skiff.dev/skiff/api/errdefs"
)

// templateFuncs are the functions --format templates may call, the
// ones docker's templates have.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
}

// formatter prints items through a --format value, as docker does:
// "json" prints each item as one line of JSON, "table TEMPLATE" prints
// a header (the field names of TEMPLATE) and aligned rows, and anything
// else is a Go template executed once per item, each followed by a
// newline.
type formatter struct {
	json  bool
	table bool
	tmpl  *template.Template
	head  string
}

// parseFormat parses a --format value; a template that does not parse
// is refused with the parser's message.
func parseFormat(format string) (*formatter, error) {
	f := &formatter{}
	switch {
	case format == "json" || format == "{{json .}}":
		f.json = true
		return f, nil
	case strings.HasPrefix(format, "table"):
		f.table = true
		format = strings.TrimSpace(strings.TrimPrefix(format, "table"))
		if format == "" {
			return nil, errdefs.Invalid("--format table needs a template after it, like 'table {{.ID}}\\t{{.Names}}'")
		}
		f.head = headerOf(format)
	}
	// Docker's templates write \t for a tab in the shell's single quotes.
	format = strings.ReplaceAll(format, `\t`, "\t")
	format = strings.ReplaceAll(format, `\n`, "\n")
	t, err := template.New("format").Funcs(templateFuncs).Option("missingkey=error").Parse(format)
	if err != nil {
		return nil, errdefs.Invalid("--format: %s", strings.TrimPrefix(err.Error(), "template: format:"))
	}
	f.tmpl = t
	return f, nil
}

// headerOf makes a table header from a template: each {{.Field}} action
// becomes FIELD, the rest of the text stays (so tabs separate columns).
func headerOf(format string) string {
	format = strings.ReplaceAll(format, `\t`, "\t")
	var b strings.Builder
	for {
		i := strings.Index(format, "{{")
		if i < 0 {
			b.WriteString(format)
			break
		}
		b.WriteString(format[:i])
		j := strings.Index(format[i:], "}}")
		if j < 0 {
			break
		}
		action := strings.TrimSpace(format[i+2 : i+j])
		fields := strings.Fields(action)
		name := ""
		for _, f := range fields {
			if strings.HasPrefix(f, ".") {
				name = f
			}
		}
		name = strings.TrimPrefix(name, ".")
		if k := strings.LastIndex(name, "."); k >= 0 {
			name = name[k+1:]
		}
		b.WriteString(strings.ToUpper(name))
		format = format[i+j+2:]
	}
	return b.String()
}

// print writes every item through the format.
func (f *formatter) print(w io.Writer, items []any) error {
	if f.json {
		for _, it := range items {
			b, err := json.Marshal(it)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\n", b)
		}
		return nil
	}
	out := w
	var tw *tabwriter.Writer
	if f.table {
		tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		out = tw
		fmt.Fprintln(tw, f.head)
	}
	for _, it := range items {
		var buf bytes.Buffer
		if err := f.tmpl.Execute(&buf, it); err != nil {
			return errdefs.Invalid("--format: %s", strings.TrimPrefix(err.Error(), "template: format:"))
		}
		buf.WriteByte('\n')
		if _, err := out.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// printFormat parses format and prints items through it, failing with
// exit code 125 on a bad template, as docker does.
func printFormat[T any](w io.Writer, format string, items []T) error {
	f, err := parseFormat(format)
	if err != nil {
		return withCode(125, err)
	}
	any := make([]any, len(items))
	for i, it := range items {
		any[i] = it
	}
	if err := f.print(w, any); err != nil {
		return withCode(125, err)
	}
	return nil
}
