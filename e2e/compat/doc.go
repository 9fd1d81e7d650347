// Package compat is the compatibility matrix of leader_receiver_creator
// (docs/compatibility.md): the receivers users put behind a Lease, each in a
// collector process of its own and all of them in one group, run through
// many terms in one process on a real control plane. Its test,
// TestCompatibility, ends every term from outside by writing the Lease and
// checks, per term, that each sub-receiver produced data during the term and
// none after it stopped, that it logged no unexplained warnings or errors,
// and that goroutines and heap stay flat; with two replicas of the
// all-receivers group, that no two groups ever ran at once (logs, audit log
// and exports, as the scenarios check it).
//
// The number of terms is COMPAT_TERMS (make test: a short run; make compat:
// 30).
package compat
