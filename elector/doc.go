// Package elector holds a Kubernetes Lease for one candidate and tells its
// caller when it wins and when it loses. It knows nothing of the collector.
//
// # Safety model
//
// The Lease is the coordination.k8s.io/v1 object read and written through
// client-go's resourcelock.LeaseLock, so every write carries the
// resourceVersion it read and the API server rejects it if anyone wrote in
// between (optimistic concurrency).
//
// A candidate that does not hold the Lease takes it only when the record is
// free (no holder, as after a release) or when it has watched the same record
// stay unchanged for the record's lease duration, measured on its own clock
// from the moment it first saw that record. Clocks are never compared across
// machines; only their rates are assumed to be close.
//
// The holder renews every retry period. Each renewal counts from the moment
// its Get answered, before its write was sent. If no renewal has succeeded
// within renew_deadline of the last one that did, the holder declares its term
// lost — exactly then, even while an attempt is still waiting for the API
// server, and never a retry period late because an answer came late.
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
// deleted Lease has given up. A holder that finds its own Lease deleted
// re-creates it while renewing and keeps its term.
//
// Every attempt reads the clock after its Get: a record counts as seen only
// once the answer is in, and a term counts from a moment before its write.
//
// A holder hands the Lease over early only through [Term.Release], which
// writes an empty holder if, and only if, the record still names this
// candidate at the version it last read. Release is therefore safe to call
// late: it never clobbers a newer holder.
//
// Like client-go's leaderelection, this does not protect against a holder
// that keeps working past its deadline (a process paused for longer than the
// margin, or work that cannot be stopped); callers must stop by the deadline,
// or end the process.
package elector
