// Package timeline is the vocabulary of what a process on the Lease did, as
// the harness saw it on its one clock, shared by every part of the e2e
// module (fleet, clientgo, the scenarios, compat, the bench, cmd/run):
//
//   - LogLine: one parsed line of a process's log;
//   - Kind and Event: a leader-election log line of leader_receiver_creator
//     (its messages, internal/logmsg), of a client-go candidate (package
//     clientgo adds its Kinds), or the start or exit of the process;
//   - Recorder: the Events of several processes, ordered on one clock;
//   - GroupSpan: a time during which one process's group ran (GroupSpans;
//     clientgo.Spans for a candidate), and CheckDisjoint, the check from the
//     logs that no two ran at once.
//
// What the API server saw of the same processes, and the kinds of overlap
// found there, are package audit's.
package timeline
