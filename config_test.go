package leaderreceivercreator

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
)

// loadConfig unmarshals the block id of file into a default config.
func loadConfig(t *testing.T, file string, id component.ID) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(file)
	require.NoError(t, err)
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	return cfg, sub.Unmarshal(cfg)
}

func TestLoadConfig(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	tests := []struct {
		id       component.ID
		expected *Config
	}{
		{
			id: component.NewID(metadata.Type),
			expected: &Config{
				AuthType:     AuthTypeServiceAccount,
				StartTimeout: 30 * time.Second,
				Checkpoints:  CheckpointsConfig{MaxSize: 64 << 10},
				LeaderElection: LeaderElectionConfig{
					LeaseName: "otel-cluster-receivers", LeaseNamespace: "monitoring",
					LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
					ReleaseOnShutdown: true,
				},
				Receivers: map[string]map[string]any{
					"k8s_cluster": nil,
					"k8s_events":  {"namespaces": []any{"default"}},
				},
			},
		},
		{
			id: component.NewIDWithName(metadata.Type, "all"),
			expected: &Config{
				AuthType: AuthTypeKubeConfig,
				Context:  "kind-dev",
				LeaderElection: LeaderElectionConfig{
					LeaseName: "otel-cluster-receivers-all", LeaseNamespace: "monitoring", Identity: "collector-0",
					LeaseDuration: 30 * time.Second, RenewDeadline: 20 * time.Second, RetryPeriod: 4 * time.Second,
					ReleaseOnShutdown: false,
				},
				Receivers: map[string]map[string]any{
					"k8s_cluster":     {"auth_type": "serviceAccount", "node_conditions_to_report": []any{"Ready", "MemoryPressure"}},
					"k8s_events/apps": {"namespaces": []any{"apps"}},
				},
				Signals:      map[string][]string{"k8s_cluster": {"metrics"}, "k8s_events/apps": {"logs"}},
				StartTimeout: time.Minute,
				Checkpoints:  CheckpointsConfig{Enabled: true, MaxSize: 16 << 10},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg, err := loadConfig(t, filepath.Join("testdata", "config.yaml"), tt.id)
			require.NoError(t, err)
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.expected, cfg)
		})
	}
}

// Each invalid configuration is its own file; the error names the field.
func TestInvalidConfig(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	tests := []struct {
		file    string
		wantErr string
	}{
		{"missing_lease_name", "leader_election.lease_name is required"},
		{"bad_lease_name", `leader_election.lease_name "Otel_Lease" is not a valid Lease name`},
		{"bad_lease_namespace", `leader_election.lease_namespace "Monitoring.NS" is not a valid namespace`},
		{"renew_not_less_than_lease", "leader_election.renew_deadline must be less than lease_duration"},
		{"stop_margin_too_small", "leader_election.renew_deadline (3.5s) must be at least 1s less than lease_duration (4s): that margin is the time the group has to stop"},
		{"renew_too_close_to_retry", "leader_election.renew_deadline must be greater than retry_period*1.2"},
		{"zero_retry_period", "leader_election.retry_period must be greater than zero"},
		{"fractional_lease_duration", "leader_election.lease_duration must be a whole number of seconds"},
		{"bad_duration", "'leader_election.lease_duration' time: invalid duration"},
		{"bad_auth_type", `auth_type must be one of serviceAccount, kubeConfig, none; got "token"`},
		{"context_without_kubeconfig", "context is only used with auth_type kubeConfig"},
		{"zero_start_timeout", "start_timeout must be greater than zero; got 0s"},
		{"no_receivers", "receivers must name at least one sub-receiver"},
		{"bad_receiver_id", `receivers: "8s_cluster" is not a valid component ID`},
		{"nested_in_itself", `receivers: "leader_receiver_creator/inner" cannot run inside leader_receiver_creator`},
		{"signals_unknown_receiver", `signals: "k8s_events" is not one of receivers`},
		{"signals_unknown_signal", `signals::k8s_cluster: unknown signal "metric"`},
		{"signals_empty", "signals::k8s_cluster must list at least one signal"},
		// contrib's k8s receivers take it; the block is their elector.
		{"member_own_elector", "receivers::k8s_events::k8s_leader_elector: a member runs only while this block holds its Lease"},
		{"member_creates_own_elector", "receivers::receiver_creator::receivers::k8s_cluster::config::k8s_leader_elector: a member runs only"},
		{"unknown_field", "has invalid keys: leader_elction"}, //nolint:misspell // the typo is the test
		{"no_namespace_anywhere", "leader_election.lease_namespace: not set, and neither POD_NAMESPACE nor"},
		{"checkpoints_not_enabled", "receivers::k8s_objects::storage: lease_checkpoints is provided only with checkpoints::enabled: true"},
		{"checkpoints_too_large", "checkpoints::max_size must be between 1 and 131072 bytes; got 1048576"},
		{"checkpoints_shared_key", "receivers::k8sobjects::storage: lease_checkpoints keys a member by its key without the type's underscores, so k8s_objects and k8sobjects would share one checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := loadConfig(t, filepath.Join("testdata", "invalid", tt.file+".yaml"), component.NewID(metadata.Type))
			if err == nil {
				err = confmap.Validate(cfg)
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestLeaseNamespaceDefaults(t *testing.T) {
	le := LeaderElectionConfig{}
	t.Setenv("POD_NAMESPACE", "from-env")
	ns, err := le.leaseNamespace()
	require.NoError(t, err)
	assert.Equal(t, "from-env", ns)

	t.Setenv("POD_NAMESPACE", "")
	saFile := filepath.Join(t.TempDir(), "namespace")
	require.NoError(t, writeFile(saFile, "from-sa-file\n"))
	old := serviceAccountNamespaceFile
	serviceAccountNamespaceFile = saFile
	t.Cleanup(func() { serviceAccountNamespaceFile = old })
	ns, err = le.leaseNamespace()
	require.NoError(t, err)
	assert.Equal(t, "from-sa-file", ns)
}

func TestFindKeyLooksEverywhere(t *testing.T) {
	m := map[string]any{
		"a": 1,
		"b": map[string]any{"c": []any{"x", map[string]any{"d": 2}, map[string]any{"k8s_leader_elector": nil}}},
	}
	assert.Equal(t, "b::c::2::k8s_leader_elector", findKey(m, ownElectorField))
	assert.Empty(t, findKey(map[string]any{"k8s_leader": 1, "e": []any{map[string]any{}}}, ownElectorField))
	assert.Empty(t, findKey(nil, ownElectorField))
}
