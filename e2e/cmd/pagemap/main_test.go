package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePIDs(t *testing.T) {
	for in, want := range map[string][2]int{"12 34": {12, 34}, "12,34": {12, 34}, "12 34\n": {12, 34}} {
		a, b, err := parsePIDs(in)
		require.NoError(t, err, in)
		require.Equal(t, want, [2]int{a, b}, in)
	}
	for _, in := range []string{"", "12", "12 x", "1 2 3"} {
		_, _, err := parsePIDs(in)
		require.ErrorContains(t, err, "--pids", in)
	}
}

func TestPackageOf(t *testing.T) {
	for sym, want := range map[string]string{
		"crypto/tls.(*Conn).Read":                                    "crypto/tls",
		"k8s.io/client-go/gentype.(*Client[go.shape.*uint8]).Watch":  "k8s.io/client-go/gentype",
		"k8s.io/apimachinery/pkg/apis/meta/v1.(*Time).UnmarshalJSON": "k8s.io/apimachinery/pkg/apis/meta/v1",
		"runtime.gopark":               "runtime",
		"main.main":                    "main",
		"gopkg.in/yaml%2ev3.unmarshal": "gopkg.in/yaml%2ev3",
	} {
		require.Equal(t, want, packageOf(sym), sym)
	}
}

// The test's own process: the page holding a function it just ran is
// resident, and attributed to its package in .text (when the binary keeps
// its symbols) and, in .gopclntab, to tables of this package.
func TestOwnPagesAreFoundAndAttributed(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	img, err := openImage(exe)
	require.NoError(t, err)
	defer func() { _ = img.Close() }()

	fn := reflect.ValueOf(packageOf).Pointer()
	f := runtime.FuncForPC(fn)
	require.NotNil(t, f)
	pkg := packageOf(f.Name()) // main, or this import path in a binary of go test -c
	page := fn &^ (pageSize - 1)

	self, err := resident(os.Getpid(), exe)
	if err != nil {
		t.Skipf("pagemap not readable here: %v", err)
	}
	require.True(t, self[uint64(page)], "the page of packageOf, just run")
	require.Equal(t, ".text", img.section(uint64(page)))

	d := img.attribute([]uint64{uint64(page)})
	require.Equal(t, float64(pageSize), d.sections[".text"])
	if len(img.syms) == 0 { // go test links without a symbol table
		require.Equal(t, map[string]float64{"(no symbol table: a stripped binary)": pageSize}, d.text)
	} else {
		require.Positive(t, d.text[pkg], "text by package: %v", d.text)
	}

	// The pclntab holds the tables of this package's functions: a page
	// with one of their _func records is attributed to this package.
	var found bool
	for _, m := range img.pclnT.marks {
		if m.name == "_func "+pkg {
			found = true
			into := map[string]float64{}
			img.pclnT.attribute(m.off&^(pageSize-1), into)
			require.Positive(t, into["_func "+pkg], "%v", into)
			break
		}
	}
	require.True(t, found, "no _func record of package %s among %d", pkg, len(img.pclnT.marks))
	require.Equal(t, ".gopclntab", img.section(img.pcln.Addr))
	into := map[string]float64{}
	img.pclnT.attribute(img.pclnT.funcname, into)
	require.Equal(t, map[string]float64{"funcnametab (function names)": pageSize}, into)
}

func TestOnlyIn(t *testing.T) {
	x := map[uint64]bool{4096: true, 8192: true, 12288: true}
	y := map[uint64]bool{8192: true, 16384: true}
	require.Equal(t, []uint64{4096, 12288}, onlyIn(x, y))
	require.Empty(t, onlyIn(y, y))
}

func TestNotAGoBinaryIsRefused(t *testing.T) {
	_, err := parsePclntab(make([]byte, 80), 0, 0, 0)
	require.ErrorContains(t, err, "not a 64-bit Go 1.20+ table")
}

// In a binary with a symbol table, go:func.* starts where parsePclntab
// would take it to start without one, and the funcdata of its functions is
// attributed to their packages.
func TestFuncdataStartsWhereTheLinkerPutsIt(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(src, []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"), 0o644))
	exe := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-o", exe, src)
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	img, err := openImage(exe)
	require.NoError(t, err)
	defer func() { _ = img.Close() }()
	require.NotZero(t, img.pclnT.findfunctab, "the symbol table names runtime.findfunctab")
	data, err := img.pcln.Data()
	require.NoError(t, err)
	estimated, err := parsePclntab(data, img.pcln.Addr, 0, 0)
	require.NoError(t, err)
	require.Equal(t, img.pclnT.gofunc, estimated.gofunc)
	var fmtFuncdata bool
	for _, m := range img.pclnT.marks {
		fmtFuncdata = fmtFuncdata || m.name == "funcdata fmt"
	}
	require.True(t, fmtFuncdata)
}
