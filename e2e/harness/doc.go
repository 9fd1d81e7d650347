// Package harness is what the end-to-end proofs share: the scenarios (the
// mixed fleet's among them), the compatibility matrix (compat) and the
// bench.
//
//   - StartControlPlane: a control plane with the demo workloads every
//     proof runs against (controlplane, cluster.SeedDemo).
//   - Lease: a namespace with deploy/'s RBAC moved into it and a
//     ServiceAccount of its own for every process on the Lease, so that the
//     API server's audit log tells their requests apart; the audit log of
//     those ServiceAccounts; their credentials.
//   - Run: a fleet of collectors (package fleet) and, if asked, client-go
//     candidates (package clientgo) on a Lease, each process as its
//     ServiceAccount, each replica through a proxy of its own if asked; its
//     events logged on the test's clock; and, once every process has
//     stopped, the final check of every proof: no two processes ever
//     active at once, from their logs (timeline.CheckDisjoint), from their
//     exports (fleet.Fleet.CheckDataOnlyFromLeaders) and from outside
//     (Outside: the audit log and the exports, by package audit's kinds of
//     overlap).
//   - MeasureOutside and Outside: that check from outside, which the bench
//     also measures with (bench.OutsideOverlap).
package harness
