// Package scale measures leader_receiver_creator with many blocks, and a
// standby's own cost (cmd/scale: `make scale`, `make standby-cost`;
// docs/performance.md):
//
//   - Run: one collector configuration with N blocks (Blocks), each its own
//     Lease and one http_check sub-receiver whose requests name its block,
//     on three replicas on a real control plane (package harness): one
//     replica takes every block first; the time until all groups run, a
//     steady window (CPU and RSS from /proc, the API server's requests from
//     its audit log), a SIGTERM of that replica until every block runs
//     elsewhere (MeasureHandover), and, at the end, the overlap of each
//     block's groups from the logs (BlockSpans, LogOverlaps) and from the
//     audit log (MeasureOutside: per block, the replicas' requests that
//     name it, compared by package audit's kinds of overlap).
//   - StandbyCost: the same binary without our block (Baseline) and as a
//     standby of distribution/config.yaml's block (Standby), started in
//     pairs and read a minute later: RSS split into anonymous memory and
//     pages of the binary, the Go runtime's memory and heap.
package scale
