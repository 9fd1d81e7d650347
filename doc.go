//go:generate go tool -modfile=hack/tools/go.mod mdatagen metadata.yaml

// Package leaderreceivercreator provides the leader_receiver_creator receiver:
// it runs a group of named sub-receivers (typically k8s_cluster and
// k8s_events) on exactly one collector replica at a time, the one that holds a
// Kubernetes Lease. Every replica validates the group at start; the replica
// that wins the Lease starts the whole group, and stops it before the Lease
// can change hands.
package leaderreceivercreator
