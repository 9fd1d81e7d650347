// Package logmsg holds the log messages of leader_receiver_creator that other
// code parses. Operators match them in log queries and alerts (the README's
// Monitoring section lists them), and the e2e harness (e2e/timeline) imports this
// package to follow each replica's elections and groups. Change a message
// only together with both. The block writes them past the collector's log
// sampling (logging.go), so that none is dropped however many blocks one
// collector runs.
package logmsg

// Every message is logged with the fields lease (namespace/name) and identity.
const (
	// Campaigning is logged once, when the block starts: field receivers.
	Campaigning = "campaigning for the lease"
	// Acquired is logged when this replica won the Lease.
	Acquired = "leadership acquired"
	// GroupStarted is logged when every sub-receiver of the group has
	// started: fields receivers, since_acquired.
	GroupStarted = "leader group started"
	// GroupStartFailed is logged when a sub-receiver could not be created or
	// started; the group was rolled back and the Lease is given back: fields
	// receivers, error.
	GroupStartFailed = "leader group failed to start; giving the lease back"
	// Lost is logged when the term ended by itself (renewals failed, or
	// another holder): field error.
	Lost = "leadership lost"
	// GroupStopped is logged when every sub-receiver has stopped (whether or
	// not the group had finished starting): fields receivers, reason.
	GroupStopped = "leader group stopped"
	// GroupStopErrors replaces GroupStopped when some Shutdown returned an
	// error; every sub-receiver has stopped all the same: also field error.
	GroupStopErrors = "leader group stopped with errors"
	// GroupNotStopped is logged when a sub-receiver's Start or Shutdown had
	// not returned by the term's deadline. The Lease is not released, this
	// replica never leads again, and it reports a FatalError so that the
	// collector exits: fields receivers (those still running), reason, error.
	GroupNotStopped = "leader group did not stop by the lease deadline; the collector must exit"
	// Exiting is logged when a sub-receiver that did not stop still runs at
	// the term's deadline and the process has not exited: it exits now, hard,
	// because from that instant another replica may lead: fields receivers,
	// exit_code.
	Exiting = "leader group still running at the lease deadline; exiting the process"
	// MemberFailed is logged when a sub-receiver of the running term reported
	// a FatalError or PermanentError: the group is stopped, the Lease given
	// back and the replica backs off, as after a failed start. The collector
	// does not see the FatalError: fields receiver, error.
	MemberFailed = "sub-receiver failed; stopping the group and giving the lease back"
	// MemberFailedLate is logged when a sub-receiver of a term that has
	// already ended reports a failure (e.g. k8s_cluster's cache sync, from a
	// goroutine that outlives its Shutdown): it changes nothing: fields
	// receiver, error.
	MemberFailedLate = "sub-receiver of an ended term reported a failure; ignored"
	// BackingOff is logged after a failed group start or a member's failure:
	// field backoff.
	BackingOff = "backing off before campaigning again"
	// Released is logged when the Lease was handed over: field reason.
	Released = "lease released"
	// LeftToExpire is logged on shutdown with release_on_shutdown false.
	LeftToExpire = "lease left to expire"
	// ReleaseFailed is logged when the release could not be written.
	ReleaseFailed = "could not release the lease; it expires after lease_duration"
	// NotReleased is logged when the Lease already named another holder.
	NotReleased = "lease not released: it names another holder"
	// LeaseUnreachable is logged once when reading or writing the Lease starts
	// failing (API server unreachable, RBAC): field error.
	LeaseUnreachable = "cannot read or write the lease"
	// LeaseReachable is logged once when it works again.
	LeaseReachable = "lease reachable again"
	// Watching is logged when the watch of the Lease is established, the
	// first time and after it was broken: handovers then take milliseconds.
	Watching = "watching the lease"
	// WatchBroken is logged once when the watch of the Lease cannot be
	// established (e.g. the Role lacks list and watch on the Lease): the
	// replica polls every retry_period until it can: field error.
	WatchBroken = "cannot watch the lease; polling every retry_period"
	// DataAfterStop is logged, once per term and sub-receiver, when a
	// sub-receiver sent data after its Shutdown had returned (or after the
	// group's stop deadline): its goroutines outlived it. The data is dropped
	// and counted in leader_group_dropped_after_stop: fields receiver, signal.
	DataAfterStop = "sub-receiver sent data after it stopped; dropped"
	// CheckpointRefused is logged, once per term, sub-receiver and reason,
	// when a write to lease_checkpoints was refused: over
	// checkpoints::max_size (reason size), or after the instance's data path
	// closed or its term ended (reason fenced). The Lease keeps the previous
	// checkpoints: fields receiver, reason, error.
	CheckpointRefused = "sub-receiver checkpoint refused; the lease keeps the previous one"
	// CheckpointUnreadable is logged when the checkpoints in the Lease won
	// cannot be read (e.g. edited by hand): the members start without: field
	// error.
	CheckpointUnreadable = "checkpoints in the lease unreadable; starting without"
	// DeprecatedType is logged when the block's configuration is resolved,
	// for a sub-receiver named by a deprecated alias of its type (httpcheck
	// for http_check, k8sobjects for k8s_objects): it works, with the new
	// type's factory and stop lock; its component ID keeps the name as
	// written: fields receiver, type, use.
	DeprecatedType = "sub-receiver type is a deprecated alias; use the new name"
)

// Reasons of GroupStopped, Released and LeftToExpire; a lost term's reason is
// ReasonLost followed by the error.
const (
	ReasonShutdown     = "shutdown"
	ReasonLost         = "lease lost: "
	ReasonStartFailed  = "group failed to start"
	ReasonMemberFailed = "sub-receiver failed"
)
