package scale

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
)

// The wrapper shows the collector its ServiceAccount's files where a pod
// has them, keeps the PID (the readings are of that process), passes the
// arguments through, and leaves the host's /run as it was.
func TestPodWrapperRunsTheCollectorAsInAPod(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (unshare --mount)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1)")
	}
	dir := t.TempDir()
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount"
	_, hostHadIt := os.Stat(sa)
	// A stand-in collector: it reports what it sees.
	fake := filepath.Join(dir, "it's a collector")
	out := filepath.Join(dir, "seen")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\n{ echo \"pid $$\"; echo \"args $*\"; echo \"token $(cat "+sa+"/token)\"; echo \"ca $(cat "+sa+"/ca.crt)\"; echo \"ns $(cat "+sa+"/namespace)\"; } >\""+out+"\"\n"), 0o755))
	token, ca := filepath.Join(dir, "sa.token"), filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(token, []byte("tok-123"), 0o600))
	require.NoError(t, os.WriteFile(ca, []byte("-----CA-----"), 0o644))

	w, err := podWrapper(dir, fake)
	require.NoError(t, err)
	cmd := exec.Command(w, "--config", "a b.yaml")
	cmd.Env = append(os.Environ(), "SA_TOKEN_FILE="+token, "SA_CA_FILE="+ca, "POD_NAMESPACE=standby-cost")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)

	seen, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, strings.Join([]string{
		"pid " + strconv.Itoa(cmd.Process.Pid),
		"args --config a b.yaml",
		"token tok-123",
		"ca -----CA-----",
		"ns standby-cost",
	}, "\n")+"\n", string(seen))
	_, hostHasIt := os.Stat(sa)
	require.Equal(t, hostHadIt == nil, hostHasIt == nil, "the host's /run is unchanged")
}

func TestPodEnvNamesTheAPIServerAndTheReplicasToken(t *testing.T) {
	cp := &controlplane.ControlPlane{Host: "https://127.0.0.1:6443", CAFile: "/pki/ca.crt"}
	require.Equal(t, map[string]string{
		"K8S_AUTH_TYPE":           "serviceAccount",
		"KUBERNETES_SERVICE_HOST": "127.0.0.1",
		"KUBERNETES_SERVICE_PORT": "6443",
		"SA_TOKEN_FILE":           "/sa/replica-2.token",
		"SA_CA_FILE":              "/pki/ca.crt",
	}, podEnv(cp, controlplane.Credentials{TokenFile: "/sa/replica-2.token"}))
}

func TestStandbyReportNamesTheAuthType(t *testing.T) {
	r := StandbyResult{Auth: AuthServiceAccount, After: 60,
		Baseline: []Reading{{RSSMiB: 54}, {RSSMiB: 55}, {RSSMiB: 53}},
		Standby:  []Reading{{RSSMiB: 56}, {RSSMiB: 56.5}, {RSSMiB: 54.8}}}
	out := StandbyReport(r)
	require.Contains(t, out, "3 runs (pairs started together), auth_type serviceAccount,")
	require.Contains(t, out, "median of the paired differences 1.8 MiB")
}
