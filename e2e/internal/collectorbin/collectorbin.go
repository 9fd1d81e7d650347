// Package collectorbin finds the collector binary the end-to-end tests run:
// the path in the environment variable E2E_COLLECTOR (make e2e sets it to
// bin/otelcol-leader), as contrib's e2e suites and envtest's
// KUBEBUILDER_ASSETS do. A test package needs it only if it runs the
// collector; nothing else has to import it.
package collectorbin

import (
	"os"
	"path/filepath"
	"testing"
)

// Env is the environment variable that names the collector binary.
const Env = "E2E_COLLECTOR"

// Path returns the absolute path in E2E_COLLECTOR. It skips t when the
// variable is empty and fails it when the file is not executable.
func Path(t testing.TB) string {
	t.Helper()
	v := os.Getenv(Env)
	if v == "" {
		t.Skip(Env + " is not set (make e2e sets it to bin/otelcol-leader)")
	}
	p, err := filepath.Abs(v)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s=%s is not an executable file", Env, p)
	}
	return p
}
