package leaderreceivercreator

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/pipeline/xpipeline"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/leaderreceivercreator/leaderreceivercreator/elector"
	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
)

// AuthType says how the receiver authenticates to the Kubernetes API.
type AuthType string

const (
	// AuthTypeServiceAccount uses the pod's service account (in-cluster config).
	AuthTypeServiceAccount AuthType = "serviceAccount"
	// AuthTypeKubeConfig uses a kubeconfig file: $KUBECONFIG, else ~/.kube/config.
	AuthTypeKubeConfig AuthType = "kubeConfig"
	// AuthTypeNone talks to the in-cluster API address without credentials.
	AuthTypeNone AuthType = "none"
)

// serviceAccountNamespaceFile is where Kubernetes mounts the pod's namespace.
var serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Config is the configuration of one leader_receiver_creator block. Each
// block campaigns for its own Lease.
type Config struct {
	// AuthType is how the Lease is read and written: serviceAccount (default),
	// kubeConfig or none. Sub-receivers have their own auth_type.
	AuthType AuthType `mapstructure:"auth_type"`
	// Context is the kubeconfig context to use with auth_type kubeConfig;
	// the current context when empty.
	Context string `mapstructure:"context"`
	// LeaderElection configures the Lease and its timings.
	LeaderElection LeaderElectionConfig `mapstructure:"leader_election"`
	// Receivers maps sub-receiver IDs (type[/name]) to their configuration.
	// All of them run on the leader only, started and stopped together.
	Receivers map[string]map[string]any `mapstructure:"receivers"`
	// Signals optionally restricts the signals a sub-receiver is created for.
	// By default a sub-receiver is created for every signal its factory
	// supports and this block has a pipeline for.
	Signals map[string][]string `mapstructure:"signals"`
	// StartTimeout bounds the group's start after the Lease was won: a group
	// whose members have not all been created and started by then is rolled
	// back and the Lease given back, as after a failed start. A start that
	// hangs would otherwise keep the Lease renewed by a replica that runs
	// nothing, or half a group.
	StartTimeout time.Duration `mapstructure:"start_timeout"`
	// Checkpoints provides the members a storage extension, lease_checkpoints,
	// that lives in the block's Lease and so follows leadership (checkpoint.go).
	Checkpoints CheckpointsConfig `mapstructure:"checkpoints"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// CheckpointsConfig configures the storage that follows the Lease.
type CheckpointsConfig struct {
	// Enabled provides lease_checkpoints: a member names it as its storage
	// (e.g. k8s_objects' or k8s_events' storage: lease_checkpoints).
	Enabled bool `mapstructure:"enabled"`
	// MaxSize bounds the checkpoints of all members together, in bytes, as
	// stored in the Lease's annotation.
	MaxSize int `mapstructure:"max_size"`
}

// maxCheckpointsSize is the largest checkpoints::max_size: the API server
// allows 256 KiB of annotations per object, and the Lease is read by every
// replica at every change.
const maxCheckpointsSize = 128 << 10

// LeaderElectionConfig configures the Lease.
type LeaderElectionConfig struct {
	// LeaseName is the name of the Lease object. Required.
	LeaseName string `mapstructure:"lease_name"`
	// LeaseNamespace is the namespace of the Lease; the pod's namespace
	// (POD_NAMESPACE, else the service account's namespace file) when empty.
	LeaseNamespace string `mapstructure:"lease_namespace"`
	// Identity is this replica's name in the Lease; POD_NAME (else the host
	// name) plus a random suffix when empty, so that no two replicas or blocks
	// ever share one.
	Identity string `mapstructure:"identity"`
	// LeaseDuration is how long standbys wait after the last renewal they saw
	// before they take the Lease over. A whole number of seconds.
	LeaseDuration time.Duration `mapstructure:"lease_duration"`
	// RenewDeadline is how long the leader keeps trying to renew before it
	// stops its group. Must be less than lease_duration.
	RenewDeadline time.Duration `mapstructure:"renew_deadline"`
	// RetryPeriod is the pause between two attempts to take or renew the Lease.
	RetryPeriod time.Duration `mapstructure:"retry_period"`
	// ReleaseOnShutdown hands the Lease over as soon as the group has stopped
	// on a graceful shutdown, instead of letting it expire.
	ReleaseOnShutdown bool `mapstructure:"release_on_shutdown"`
}

func createDefaultConfig() component.Config {
	return &Config{
		AuthType:     AuthTypeServiceAccount,
		StartTimeout: 30 * time.Second,
		Checkpoints:  CheckpointsConfig{MaxSize: 64 << 10},
		LeaderElection: LeaderElectionConfig{
			LeaseDuration:     15 * time.Second,
			RenewDeadline:     10 * time.Second,
			RetryPeriod:       2 * time.Second,
			ReleaseOnShutdown: true,
		},
	}
}

var signalsByName = map[string]pipeline.Signal{
	"metrics":  pipeline.SignalMetrics,
	"logs":     pipeline.SignalLogs,
	"traces":   pipeline.SignalTraces,
	"profiles": xpipeline.SignalProfiles,
}

// Validate checks this block's own fields. Each sub-receiver's configuration
// is checked against its factory when the collector starts (see Start).
func (cfg *Config) Validate() error {
	var errs []error
	switch cfg.AuthType {
	case AuthTypeServiceAccount, AuthTypeKubeConfig, AuthTypeNone:
	default:
		errs = append(errs, fmt.Errorf("auth_type must be one of %s, %s, %s; got %q",
			AuthTypeServiceAccount, AuthTypeKubeConfig, AuthTypeNone, cfg.AuthType))
	}
	if cfg.Context != "" && cfg.AuthType != AuthTypeKubeConfig {
		errs = append(errs, fmt.Errorf("context is only used with auth_type %s", AuthTypeKubeConfig))
	}
	if cfg.StartTimeout <= 0 {
		errs = append(errs, fmt.Errorf("start_timeout must be greater than zero; got %s", cfg.StartTimeout))
	}
	if cfg.Checkpoints.MaxSize <= 0 || cfg.Checkpoints.MaxSize > maxCheckpointsSize {
		errs = append(errs, fmt.Errorf("checkpoints::max_size must be between 1 and %d bytes; got %d", maxCheckpointsSize, cfg.Checkpoints.MaxSize))
	}
	errs = append(errs, cfg.LeaderElection.validate()...)
	errs = append(errs, cfg.validateReceivers()...)
	return errors.Join(errs...)
}

func (le *LeaderElectionConfig) validate() []error {
	var errs []error
	if le.LeaseName == "" {
		errs = append(errs, errors.New("leader_election.lease_name is required"))
	} else if msgs := validation.IsDNS1123Subdomain(le.LeaseName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("leader_election.lease_name %q is not a valid Lease name: %s", le.LeaseName, strings.Join(msgs, "; ")))
	}
	if le.LeaseNamespace != "" {
		if msgs := validation.IsDNS1123Label(le.LeaseNamespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("leader_election.lease_namespace %q is not a valid namespace: %s", le.LeaseNamespace, strings.Join(msgs, "; ")))
		}
	} else if _, err := podNamespace(); err != nil {
		errs = append(errs, fmt.Errorf("leader_election.lease_namespace: %w", err))
	}
	if err := elector.ValidateTimings(le.LeaseDuration, le.RenewDeadline, le.RetryPeriod); err != nil {
		errs = append(errs, fmt.Errorf("leader_election.%w", err))
	}
	return errs
}

func (cfg *Config) validateReceivers() []error {
	var errs []error
	if len(cfg.Receivers) == 0 {
		errs = append(errs, errors.New("receivers must name at least one sub-receiver"))
	}
	checkpointed := map[string]string{} // storage key -> member using lease_checkpoints
	for _, key := range slices.Sorted(maps.Keys(cfg.Receivers)) {
		id, err := parseID(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("receivers: %w", err))
			continue
		}
		if id.Type() == metadata.Type {
			errs = append(errs, fmt.Errorf("receivers: %q cannot run inside %s", key, metadata.Type))
		}
		if path := findKey(cfg.Receivers[key], ownElectorField); path != "" {
			errs = append(errs, fmt.Errorf("receivers::%s::%s: a member runs only while this block holds its Lease; an elector of its own would start it outside the block's terms (remove the field)", key, path))
		}
		if storage, _ := cfg.Receivers[key]["storage"].(string); storage == checkpointsID.String() {
			if !cfg.Checkpoints.Enabled {
				errs = append(errs, fmt.Errorf("receivers::%s::storage: %s is provided only with checkpoints::enabled: true", key, storage))
			}
			if other, ok := checkpointed[storageKey(key, "")]; ok {
				errs = append(errs, fmt.Errorf("receivers::%s::storage: %s keys a member by its key without the type's underscores, so %s and %s would share one checkpoint: give one a name (e.g. %s/events)", key, storage, other, key, id.Type()))
			}
			checkpointed[storageKey(key, "")] = key
		}
	}
	for _, key := range slices.Sorted(maps.Keys(cfg.Signals)) {
		if _, ok := cfg.Receivers[key]; !ok {
			errs = append(errs, fmt.Errorf("signals: %q is not one of receivers", key))
		}
		names := cfg.Signals[key]
		if len(names) == 0 {
			errs = append(errs, fmt.Errorf("signals::%s must list at least one signal", key))
		}
		for _, name := range names {
			if _, ok := signalsByName[name]; !ok {
				errs = append(errs, fmt.Errorf("signals::%s: unknown signal %q (use metrics, logs, traces or profiles)", key, name))
			}
		}
	}
	return errs
}

// parseID parses a sub-receiver key such as "k8s_cluster" or "k8s_events/ns".
func parseID(key string) (component.ID, error) {
	var id component.ID
	if err := id.UnmarshalText([]byte(key)); err != nil {
		return id, fmt.Errorf("%q is not a valid component ID: %w", key, err)
	}
	return id, nil
}

// signalsFor returns the signals the user restricted id to, or nil.
func (cfg *Config) signalsFor(key string) []pipeline.Signal {
	var out []pipeline.Signal
	for _, name := range cfg.Signals[key] {
		out = append(out, signalsByName[name])
	}
	return out
}

// leaseNamespace is lease_namespace or, when empty, the pod's namespace.
func (le *LeaderElectionConfig) leaseNamespace() (string, error) {
	if le.LeaseNamespace != "" {
		return le.LeaseNamespace, nil
	}
	return podNamespace()
}

func podNamespace() (string, error) {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns, nil
	}
	b, err := os.ReadFile(serviceAccountNamespaceFile)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	return "", errors.New("not set, and neither POD_NAMESPACE nor " + serviceAccountNamespaceFile + " gives the pod's namespace")
}

// ownElectorField is the field contrib's k8s receivers (k8s_cluster,
// k8s_events, k8sobjects) take to run under the k8s_leader_elector extension.
// In a member, or in a receiver a member creates (receiver_creator's
// templates), it would start that receiver whenever the extension leads, on a
// context the group's stop does not cancel.
const ownElectorField = "k8s_leader_elector"

// findKey returns the path (a::b::c, list indexes included) of the first
// key named name in v at any depth, or "".
func findKey(v any, name string) string {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if k == name {
				return k
			}
			if p := findKey(v[k], name); p != "" {
				return k + "::" + p
			}
		}
	case []any:
		for i, e := range v {
			if p := findKey(e, name); p != "" {
				return fmt.Sprint(i) + "::" + p
			}
		}
	}
	return ""
}
