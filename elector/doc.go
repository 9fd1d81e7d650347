// Package elector holds a Kubernetes Lease for one candidate and tells its
// caller when it wins and when it loses. It knows nothing of the collector.
//
// # Safety
//
// The safety model is stated once, as numbered invariants, in the
// repository's docs/safety.md, with the term's deadline and its formula. This
// package provides S2 to S6 (and, through [Term.Abandon], its part of S14);
// the caller must stop the work the Lease guards by [Term.Deadline]. What
// follows is how, not what: where this text and docs/safety.md differ, the
// latter is right. Tests cite the invariant they prove ("Invariant S3.").
//
// # The record
//
// The Lease is the coordination.k8s.io/v1 object, with the spec fields
// client-go's resourcelock.LeaseLock writes (holderIdentity,
// leaseDurationSeconds, acquireTime, renewTime, leaseTransitions), so kubectl
// and client-go candidates read and write it unchanged. This package reads
// and writes it through a small lock of its own that keeps the object's
// resourceVersion: every write carries the resourceVersion it is based on,
// and the API server rejects it if anyone wrote in between. An update also
// names the uid of the object it is based on, so the API server (which would
// create a missing Lease on an update) never re-creates a deleted Lease
// through it; only an explicit create does (S5).
//
// # Versions and ownership (S2, S3)
//
// A version is unchanged only if its uid, its resourceVersion and its spec
// all are: two writes within one second are two changes (their
// resourceVersions differ, though their times may not), and so is a record
// written at a resourceVersion handed out before (their specs differ), as an
// API server whose etcd was restored from a backup without --bump-revision
// does. The resourceVersion alone never makes two records the same version.
//
// A record naming this candidate is its own only if its spec is exactly one
// this candidate wrote: the version it last wrote, the same with only labels
// or annotations changed, or one whose answer was lost. Any other record is a
// foreign holder, also one naming this candidate.
//
// A candidate takes a foreign record only after it has watched the same
// version stay unchanged for the longer of the record's leaseDurationSeconds
// and its own lease_duration, measured on its own clock from the moment it
// first saw that version; a record free as after a release (no holder and
// leaseDurationSeconds of at most 1, as [Term.Release] and client-go's
// ReleaseOnCancel write) it takes at once. Every attempt that reads the Lease
// reads the clock after its Get: a version counts as seen only once the
// answer is in, and a term counts from a moment before its write.
//
// # Watches
//
// Every candidate watches its one Lease (a list and a watch with the field
// selector metadata.name=<name>, which RBAC resourceNames authorizes), and
// counts a version the watch delivers as seen at the moment it arrives. A
// standby makes no request while the watch is healthy: it tries at once when
// the Lease is released or missing, and otherwise schedules one attempt at the
// moment the version it saw last will have been unchanged for the wait above.
// The watch is for speed only: every take-over is still a Get and a
// conditional update (or a create), decided on the version the Get returned.
// A version with a lower resourceVersion than one already seen (compared as
// numbers, as etcd's are) is not counted as seen: it is most likely a late
// event, and counting it would restart the wait. But as a restored etcd hands
// out lower resourceVersions again, to new records, it is not ignored either:
// a standby that receives one reads the Lease at once. While the watch cannot
// be established, candidates poll every retry period (jittered) and
// re-establish it with backoff ([Config.OnWatch] hears of both).
//
// # Renewing and losing (S3, S4)
//
// The holder renews every retry period, optimistically: one update of the
// version it last wrote, without a Get. Only if that update conflicts (or
// finds the Lease gone) does it read the Lease and decide: a version that is
// its own it renews; a foreign version, or a missing Lease, ends its term at
// once. A version the holder's watch delivers that it did not write makes it
// renew at once, and the deletion of the object it holds ends its term at
// once. A record its watch delivers at the uid and resourceVersion of the
// version it wrote, but with another spec, it reads instead of updating: the
// API server, which checks only the resourceVersion, would let the update
// overwrite it.
//
// A term is lost exactly renew_deadline after the last successful renewal,
// even while an attempt still waits for the API server; [Term.Lost] closes
// then and [Term.Deadline] stops moving. A late answer alone does not end a
// term: when one comes so late that the next attempt would fall at or after
// the renew deadline, the holder tries once more at once, bounded by the time
// left. [Elector.Campaign] never hands out a term already past its renew
// deadline. [ValidateTimings] keeps the margin between loss and deadline
// (docs/safety.md, "The term's deadline").
//
// # A Lease that does not exist (S5)
//
// A missing Lease cannot be told apart from one deleted by hand under a
// holder that still works. So a candidate that creates the Lease holds (and
// renews) it until lease_duration after the creation before
// [Elector.Campaign] returns the term, also when it loses that term and wins
// again by renewing the record it created. A holder whose Lease is deleted
// does not re-create it while renewing: a candidate that does not wait after
// a creation (client-go's) may re-create it and lead at once, and the holder
// must already be stopping by then.
//
// # Handing over (S6)
//
// A holder hands the Lease over early only through [Term.Release], which
// writes an empty holder (and leaseDurationSeconds 1) if, and only if, the
// version it just read is still its own, conditionally on that version.
// Release is therefore safe to call late. [Term.Abandon] stops renewing and
// returns once nothing more will be written, without waiting for the watch,
// which only reads.
//
// Like client-go's leaderelection, this does not protect against a holder
// that keeps working past its deadline (a process paused for longer than the
// margin, or work that cannot be stopped); callers must stop by the deadline,
// or end the process.
package elector
