package scenarios

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/collectorbin"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestValidateNamesTheBadField: `otelcol-leader validate` rejects a bad
// leader_receiver_creator block and names the field.
func TestValidateNamesTheBadField(t *testing.T) {
	collector := collectorbin.Path(t)
	for _, tc := range []struct {
		name, overlay, want string
	}{
		{"valid", timings, ""},
		{"renew deadline not below lease duration", `
receivers:
  leader_receiver_creator:
    leader_election: {lease_duration: 4s, renew_deadline: 4s}
`, "leader_election.renew_deadline must be less than lease_duration"},
		{"fractional lease duration", `
receivers:
  leader_receiver_creator:
    leader_election: {lease_duration: 15500ms}
`, "leader_election.lease_duration must be a whole number of seconds"},
		{"signals of an unknown sub-receiver", `
receivers:
  leader_receiver_creator:
    signals: {k8s_event: [logs]}
`, `signals: "k8s_event" is not one of receivers`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), collector, "validate", "--config", distConfig, "--config", writeConfig(t, tc.overlay))
			cmd.Env = append(os.Environ(), "POD_NAMESPACE=validate") // the Lease namespace
			out, err := cmd.CombinedOutput()
			if tc.want == "" {
				require.NoError(t, err, "%s", out)
				return
			}
			require.Error(t, err, "validate accepted it")
			assert.Contains(t, string(out), "receivers::leader_receiver_creator: ")
			assert.Contains(t, string(out), tc.want)
		})
	}
}

// TestSubReceiverTypoFailsEveryReplica: a typo in a sub-receiver's
// configuration fails every replica at start, naming the sub-receiver,
// before any of them campaigns: no Lease is created.
func TestSubReceiverTypoFailsEveryReplica(t *testing.T) {
	s := start(t, options{manual: true, overlay: `
receivers:
  leader_receiver_creator:
    receivers:
      k8s_cluster: {collection_intervall: 10s}
`})
	for _, r := range s.f.Replicas() {
		require.NoError(t, r.Start())
	}
	for _, r := range s.f.Replicas() {
		s.waitFor(time.Minute, r.Name+" exits", func(ev timeline.Event) bool {
			return ev.Replica == r.Name && ev.Kind == timeline.ProcessExited
		})
		assert.Greater(t, r.ExitCode(), 0, r.Name)
		log := r.LogTail(4000)
		assert.Contains(t, log, "receivers::k8s_cluster", r.Name)
		assert.Contains(t, log, "collection_intervall", r.Name)
	}
	assert.Zero(t, s.count(func(ev timeline.Event) bool { return ev.Kind == timeline.Campaigning }), "nobody campaigned")
	_, err := s.lease()
	assert.True(t, apierrors.IsNotFound(err), "no Lease was created: %v", err)
}
