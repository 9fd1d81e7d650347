// Package elector holds a Kubernetes Lease for one candidate and tells its
// caller when it wins and when it loses. It knows nothing of the collector.
//
// # Safety model
//
// The Lease is the coordination.k8s.io/v1 object, with the spec fields
// client-go's resourcelock.LeaseLock writes (holderIdentity,
// leaseDurationSeconds, acquireTime, renewTime, leaseTransitions), so kubectl
// and client-go candidates read and write it unchanged. This package reads
// and writes it through a small lock of its own that keeps the object's
// resourceVersion: every write carries the resourceVersion it is based on,
// and the API server rejects it if anyone wrote in between (optimistic
// concurrency). A version is unchanged only if its uid, its resourceVersion
// and its spec all are: two writes within one second are two changes (their
// resourceVersions differ, though their times may not), and so is a record
// written at a resourceVersion handed out before (their specs differ): an API
// server whose etcd was restored from a backup without --bump-revision hands
// out resourceVersions again. The resourceVersion alone never makes two
// records the same version.
//
// A record naming this candidate is its own only if this candidate wrote it:
// its spec is exactly a spec it wrote (the version it last wrote, the same
// with only labels or annotations changed, or one whose answer was lost),
// whatever its resourceVersion. Any other record is a foreign holder, also
// one naming this candidate: another candidate configured with the same
// identity, a holder set by hand to this candidate's name, or this
// candidate's own record after a restart (it waits it out). Two candidates
// therefore never both count a record as theirs.
//
// A candidate that does not hold the Lease takes it at once only when it is
// free as after a release: no holder and leaseDurationSeconds of at most 1
// (this package's release and client-go's ReleaseOnCancel write that). Any
// other record (a foreign holder, or a holder emptied by hand with its
// duration left) it takes only after it has watched the same version (uid,
// resourceVersion and spec) stay unchanged for the longer of the record's
// leaseDurationSeconds and its own lease_duration, measured on its own clock
// from the moment it first saw that version: a shorter duration written by
// someone else does not shorten the wait. Clocks are never compared across
// machines; only their rates are assumed to be close.
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
// conditional update (or a create), decided on the version the Get returned,
// so a missed, late or reordered event can delay a take-over but never
// allow one early. A version with a lower resourceVersion than one already
// seen (compared as numbers, as etcd's resourceVersions are, one counter for
// all objects) is not counted as seen: it is most likely a late event, also
// one of a Lease deleted since, and counting it would restart the wait. But
// as an etcd restored without --bump-revision hands out lower
// resourceVersions again, to new records, it is not ignored either: a standby
// that receives one reads the Lease at once and counts what the Get returns,
// which a late event leaves unchanged and a restored record restarts. While
// the watch cannot be established, candidates poll every retry period
// (jittered) and re-establish it with backoff ([Config.OnWatch] hears of both).
//
// # Renewing
//
// The holder renews every retry period, optimistically: one update of the
// version it last wrote, without a Get. Only if that update conflicts (or
// finds the Lease gone) does it read the Lease and decide: a version that is
// its own it renews; a foreign version ends its term at once; a missing Lease
// ends its term (see below). A version the holder's watch delivers that it did
// not write makes it renew at once, so a hand edit ends its term within one
// round trip; the deletion of the object it holds, delivered by the watch,
// ends its term at once. A record its watch delivers at the uid and
// resourceVersion of the version it wrote, but with another spec (handed out
// again after a restore), it reads instead of updating: the API server, which
// checks only the resourceVersion, would let the update overwrite it.
// Each renewal counts from a clock reading taken
// before its write was sent (after its Get, when it made one). If no renewal has succeeded
// within renew_deadline of the last one that did, the holder declares its term
// lost — exactly then, even while an attempt is still waiting for the API
// server, and never a retry period late because an answer came late. Nor
// does a late answer alone end a term: when one comes so late that the next
// attempt, a retry period later, would fall at or after that deadline, and
// no attempt began within the last retry period before it, the holder tries
// once more at once, bounded by the time left (no renewal counts after the
// deadline).
// [Elector.Campaign] never hands out a term already past its renew deadline.
//
// Every term carries a deadline ([Term.Deadline]): lease_duration after its
// last successful renewal counted from, less [DriftSlack] (1 % of
// lease_duration, for clocks whose rates differ). No other candidate can take
// the Lease before that instant, whatever the fault, because it waits
// lease_duration on its own clock from a moment after that renewal was
// written. The caller must have stopped the work the Lease guards by then.
// A loss is declared at least lease_duration - renew_deadline - DriftSlack
// before the deadline; [ValidateTimings] keeps that margin at least
// [MinStopMargin] and at least twice the slack.
//
// A missing Lease cannot be told apart from one deleted by hand under a
// holder that still works. So a candidate that creates the Lease holds (and
// renews) it until lease_duration after the creation before
// [Elector.Campaign] returns the term — also when it loses that term and
// wins again by renewing the record it created: by then any holder of a
// deleted Lease has given up. A holder whose Lease is deleted loses its term
// (at once through its watch, else at its next renewal) and does not
// re-create it while renewing: a candidate that does not wait after a
// creation (client-go's) may re-create it and lead at once, and the holder
// must already be stopping by then.
//
// Every attempt that reads the Lease reads the clock after its Get: a
// version counts as seen only once the answer is in, and a term counts from a
// moment before its write. An update names the uid of the object it is based
// on, so the API server (which would create a missing Lease on an update)
// never re-creates a deleted Lease through it; only an explicit create does,
// which the rule above covers.
//
// A holder hands the Lease over early only through [Term.Release], which
// writes an empty holder (and leaseDurationSeconds 1) if, and only if, the
// version it just read is still its own, conditionally on that version.
// Release is therefore safe to call late: it never clobbers a newer holder.
// A holder whose renewal finds a version that is not its own loses its term
// at once.
//
// Like client-go's leaderelection, this does not protect against a holder
// that keeps working past its deadline (a process paused for longer than the
// margin, or work that cannot be stopped); callers must stop by the deadline,
// or end the process.
package elector
