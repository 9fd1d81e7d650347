package lossless

import (
	"embed"
	"os"
	"path/filepath"
	"time"
)

//go:embed configs/*.yaml
var configs embed.FS

// EventPrefix starts the name of every Event the generator creates; the
// sink counts only those.
const EventPrefix = "lossless-"

// PeerReceivers make up the peer's group (configs/peer.yaml).
var PeerReceivers = []string{K8sObjects, K8sEvents}

// Config is one configuration of the measurement: a collector
// configuration (configs/<File>), merged over configs/common.yaml.
type Config struct {
	Name string // in the table and the results
	File string // under configs/
	Peer bool   // otelcol-peer (k8s_leader_elector), not ours
}

// The three configurations of the measurement.
var (
	Storage   = Config{Name: "ours, checkpoints in the Lease", File: "storage.yaml"}
	NoStorage = Config{Name: "ours, no storage", File: "no-storage.yaml"}
	Peer      = Config{Name: "peer, file_storage", File: "peer.yaml", Peer: true}
)

// Configs by the short name the command takes.
var Configs = map[string]Config{"storage": Storage, "no-storage": NoStorage, "peer": Peer}

// Write writes the configuration and common.yaml into dir and returns the
// collector's --config arguments.
func (c Config) Write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var args []string
	for _, name := range []string{"common.yaml", c.File} {
		data, err := configs.ReadFile("configs/" + name)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		args = append(args, "--config", p)
	}
	return args, nil
}

// Timings are the Lease timings of every configuration.
type Timings struct {
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Env is the environment a configuration reads (besides what package fleet
// sets): the Lease's name and timings, the Events' namespace, in-cluster
// credentials from KUBECONFIG.
func Env(t Timings, leaseName, eventsNamespace string) map[string]string {
	return map[string]string{
		"K8S_AUTH_TYPE":    "kubeConfig",
		"LEASE_NAME":       leaseName,
		"LEASE_DURATION":   t.LeaseDuration.String(),
		"RENEW_DEADLINE":   t.RenewDeadline.String(),
		"RETRY_PERIOD":     t.RetryPeriod.String(),
		"EVENTS_NAMESPACE": eventsNamespace,
	}
}
