package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/collectorbin"
)

// TestConfigsValidate checks, without a control plane, that the matrix's
// configurations and the prometheus example in distribution/ parse and
// validate for the distribution (otelcol-leader validate: the YAML, the
// collector's components and the block's own fields; the sub-receivers'
// configurations are built when a replica starts, which TestCompatibility
// does).
func TestConfigsValidate(t *testing.T) {
	collector := collectorbin.Path(t)
	dir := t.TempDir()
	env := append(os.Environ(),
		"POD_NAME=replica-1", "POD_NAMESPACE=compat", "OUTPUT_DIR="+dir, "HEALTHCHECK_ENDPOINT=127.0.0.1:0",
		"TELEMETRY_METRICS_HOST=127.0.0.1", "TELEMETRY_METRICS_PORT=0", "KUBECONFIG="+filepath.Join(dir, "kubeconfig"),
		envID+"=row", envPprof+"=127.0.0.1:0", envTokenFile+"="+filepath.Join(dir, "token"), envCAFile+"="+filepath.Join(dir, "ca.crt"),
		envAPIServer+"=127.0.0.1:6443", envAPIServerURL+"=https://127.0.0.1:6443", envTarget+"=127.0.0.1:8080", envTargetsNamespace+"="+targetsNamespace)
	validate := func(t *testing.T, path string) {
		cmd := exec.Command(collector, "validate", "--config", path)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s", out)
	}
	for _, rc := range append([][]string{receiverNames()}, singles()...) {
		cfg, err := collectorConfig(rc)
		require.NoError(t, err)
		path := filepath.Join(dir, "config.yaml")
		require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
		t.Run(rc[0]+"…", func(t *testing.T) { validate(t, path) })
	}
	t.Run("distribution/config-prometheus.yaml", func(t *testing.T) { validate(t, "../../distribution/config-prometheus.yaml") })
	_, err := collectorConfig([]string{"nope"})
	assert.ErrorContains(t, err, `no receiver "nope" in the matrix`)
}

func singles() [][]string {
	var out [][]string
	for _, n := range receiverNames() {
		out = append(out, []string{n})
	}
	return out
}
