package leaderreceivercreator

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/safety.md states the safety model as numbered invariants, each under
// a heading "### S<n>. <title>". A test proves one by a line of its doc
// comment that reads "Invariant S<n>." or "Invariants S<n>, S<m>.".
var (
	invariantHeading = regexp.MustCompile(`(?m)^### (S[0-9]+)\. `)
	citationLine     = regexp.MustCompile(`^Invariants? (S[0-9]+(?:, S[0-9]+)*)\.$`)
)

// TestEveryInvariantIsCited fails when an invariant of docs/safety.md is
// cited by no test of this module or of e2e/, when a citation names no
// invariant, or when one stands anywhere but in a test's doc comment. With -v
// it lists the tests that cite each invariant.
func TestEveryInvariantIsCited(t *testing.T) {
	doc, err := os.ReadFile("docs/safety.md")
	if err != nil {
		t.Fatal(err)
	}
	var invariants []string
	for _, m := range invariantHeading.FindAllStringSubmatch(string(doc), -1) {
		invariants = append(invariants, m[1])
	}
	if len(invariants) == 0 {
		t.Fatal("docs/safety.md states no invariant (headings \"### S<n>. <title>\")")
	}

	citedBy := map[string][]string{} // invariant -> package dir and test
	for _, c := range testCitations(t, ".") {
		if !slices.Contains(invariants, c.invariant) {
			t.Errorf("%s: %s cites %s, which docs/safety.md does not state", c.pos, c.test, c.invariant)
			continue
		}
		if c.test == "" {
			t.Errorf("%s: a citation of %s outside the doc comment of a test", c.pos, c.invariant)
			continue
		}
		citedBy[c.invariant] = append(citedBy[c.invariant], c.test)
	}
	for _, inv := range invariants {
		if len(citedBy[inv]) == 0 {
			t.Errorf("invariant %s of docs/safety.md is cited by no test (a line \"Invariant %s.\" in a test's doc comment)", inv, inv)
			continue
		}
		t.Logf("%s: %s", inv, strings.Join(citedBy[inv], " "))
	}
}

type citation struct {
	pos       string // file:line
	test      string // package dir and test name; empty outside a test's doc comment
	invariant string
}

// testCitations reads the citations in every _test.go file under root,
// e2e's module included; bin/ (scratch copies of the repository), testdata
// and directories that Go ignores are skipped.
func testCitations(t *testing.T, root string) []citation {
	t.Helper()
	var out []citation
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "bin" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		docs := map[*ast.CommentGroup]string{} // a test's doc comment -> the test
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Doc != nil &&
				strings.HasPrefix(fn.Name.Name, "Test") && fn.Name.Name != "TestMain" {
				docs[fn.Doc] = filepath.ToSlash(filepath.Dir(path)) + ":" + fn.Name.Name
			}
		}
		for _, group := range f.Comments {
			for _, c := range group.List {
				m := citationLine.FindStringSubmatch(strings.TrimSpace(strings.TrimPrefix(c.Text, "//")))
				if m == nil {
					continue
				}
				for inv := range strings.SplitSeq(m[1], ", ") {
					out = append(out, citation{pos: fset.Position(c.Pos()).String(), test: docs[group], invariant: inv})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
