// Package lossless measures what a handover of the Lease does to the data:
// per handover, the Kubernetes Events lost (created, exported by nobody)
// and duplicated (exported more than once), counted at the sink, for
// k8s_objects (watch mode) and k8s_events, in several configurations side
// by side (cmd/lossless, `make lossless`; docs/performance.md), and in the
// scenario that asserts the goals for k8s_objects with our checkpoint
// storage (scenarios/lossless_test.go).
//
//   - Generator: core/v1 Events at a steady rate, unique names.
//   - Sink: an OTLP/gRPC logs receiver in the measuring process that
//     counts, per receiver, every export of each Event and who made it.
//     The configurations export to it synchronously (no batch processor,
//     no sending queue), so a count is exact across a SIGKILL.
//   - Config: the collector configurations (configs/), merged over
//     configs/common.yaml.
//   - Fleet: one configuration's replicas and sink; Handover signals the
//     leader, waits for the next group, restarts the replica with its
//     directory (its file_storage) kept.
//   - Tally: every Event attributed to the handover whose signal is
//     nearest to its creation; Total sums one kind of handover.
package lossless
