// Package testflags defines the flags that `make e2e` passes to every test
// binary of this module (go test ./... -args -collector=...). A test binary
// rejects a flag it does not define, so every test package of the e2e
// module must import this package, even if only for its side effect.
package testflags

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// Collector is the -collector flag: the path of bin/otelcol-leader.
var Collector = flag.String("collector", "", "path of the collector binary (bin/otelcol-leader); tests that need it are skipped when it is not given")

// CollectorPath returns the absolute path of -collector. It skips t when the
// flag is empty and fails it when the file is not executable.
func CollectorPath(t testing.TB) string {
	t.Helper()
	if *Collector == "" {
		t.Skip("no -collector given (make e2e passes -collector=bin/otelcol-leader)")
	}
	p, err := filepath.Abs(*Collector)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("-collector %s is not an executable file", p)
	}
	return p
}
