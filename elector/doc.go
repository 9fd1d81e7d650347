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
// The holder renews every retry period. Each renewal stamps the time it was
// sent; if no renewal has succeeded within renew_deadline of the last one that
// did, the holder declares its term lost. Because renew_deadline is shorter
// than lease_duration, the holder gives up at least
// lease_duration - renew_deadline before any other candidate can take over:
// that margin is what the caller has to stop the work the Lease guards.
//
// A missing Lease cannot be told apart from one deleted by hand under a
// holder that still works. So a candidate that wins by creating the Lease
// holds (and renews) it for lease_duration before [Elector.Campaign] returns
// the term: by then any holder of a deleted Lease has given up. A holder that
// finds its own Lease deleted re-creates it while renewing and keeps its term.
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
// that keeps working after its term ended (a process paused for longer than
// the margin); callers must stop within the margin.
package elector
