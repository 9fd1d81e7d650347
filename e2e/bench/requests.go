package bench

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
)

// Requests is the report's P4: what leader election costs the API server
// in steady state, per replica, counted by the API server itself (the
// audit log, each replica its own ServiceAccount) over a window with no
// kills and no change of leader: Lease requests only (the group's own
// requests are not the election's).
type Requests struct {
	WindowSeconds      float64           `json:"window_seconds"`
	RetryPeriodSeconds float64           `json:"retry_period_seconds"`
	Leader             string            `json:"leader"`
	Replicas           []ReplicaRequests `json:"replicas"`
	// Per retry_period (the count over the window divided by
	// window/retry_period); watches as the mean number open.
	LeaderWrites   Summary `json:"leader_writes_per_retry_period"`
	LeaderReads    Summary `json:"leader_reads_per_retry_period"`
	LeaderWatches  Summary `json:"leader_open_watches"`
	StandbyWrites  Summary `json:"standby_writes_per_retry_period"`
	StandbyReads   Summary `json:"standby_reads_per_retry_period"`
	StandbyWatches Summary `json:"standby_open_watches"`
}

// ReplicaRequests is one replica's Lease requests in the window.
type ReplicaRequests struct {
	Replica string `json:"replica"`
	Role    string `json:"role"` // leader or standby
	audit.LeaseRequests
	WritesPerPeriod float64 `json:"writes_per_retry_period"`
	ReadsPerPeriod  float64 `json:"reads_per_retry_period"`
}

// CountRequests is P4 from the audit log's requests: users maps each
// replica to its ServiceAccount's user name, leader names the replica that
// led throughout window.
func CountRequests(reqs []audit.Request, users map[string]string, leader string, window audit.Interval, retryPeriod time.Duration) *Requests {
	periods := float64(window.Duration()) / float64(retryPeriod)
	r := &Requests{WindowSeconds: window.Duration().Seconds(), RetryPeriodSeconds: retryPeriod.Seconds(), Leader: leader}
	names := make([]string, 0, len(users))
	for name := range users {
		names = append(names, name)
	}
	sort.Strings(names)
	var lw, lr, lwatch, sw, sr, swatch []float64
	for _, name := range names {
		c := audit.CountLeaseRequests(reqs, users[name], window)
		rr := ReplicaRequests{Replica: name, Role: "standby", LeaseRequests: c}
		if periods > 0 {
			rr.WritesPerPeriod, rr.ReadsPerPeriod = float64(c.Writes)/periods, float64(c.Reads)/periods
		}
		if name == leader {
			rr.Role = "leader"
			lw, lr, lwatch = append(lw, rr.WritesPerPeriod), append(lr, rr.ReadsPerPeriod), append(lwatch, c.OpenWatches)
		} else {
			sw, sr, swatch = append(sw, rr.WritesPerPeriod), append(sr, rr.ReadsPerPeriod), append(swatch, c.OpenWatches)
		}
		r.Replicas = append(r.Replicas, rr)
	}
	r.LeaderWrites, r.LeaderReads, r.LeaderWatches = Summarize(lw), Summarize(lr), Summarize(lwatch)
	r.StandbyWrites, r.StandbyReads, r.StandbyWatches = Summarize(sw), Summarize(sr), Summarize(swatch)
	return r
}

// steadyRequests waits for a single leader with every replica healthy,
// lets the fleet run undisturbed for plan.SteadyWindow, and counts each
// replica's Lease requests in that window from the audit log (P4). An
// error if the leader changed during the window.
func steadyRequests(ctx context.Context, f *fleet.Fleet, tr *Tracker, plan Plan, l *audit.Log, ns string) (*Requests, error) {
	leader, err := waitReady(ctx, f, tr, plan.TrialTimeout)
	if err != nil {
		return nil, err
	}
	from := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(plan.SteadyWindow): // the window measured, not synchronisation
	}
	to := time.Now()
	if ls := tr.Leaders(); len(ls) != 1 || ls[0] != leader {
		return nil, fmt.Errorf("the leader changed during the window: %v, was %s", ls, leader)
	}
	for _, iv := range tr.Spans() {
		if iv.Start.After(from) || (!iv.End.IsZero() && iv.End.After(from)) {
			return nil, fmt.Errorf("%s's %s started or stopped during the window", iv.Replica, iv.Receiver)
		}
	}
	if err := l.Poll(); err != nil {
		return nil, err
	}
	users := map[string]string{}
	for _, r := range f.Replicas() {
		users[r.Name] = cluster.ServiceAccountUser(ns, r.Name)
	}
	return CountRequests(l.Requests(), users, leader, audit.Interval{Start: from, End: to}, plan.RetryPeriod), nil
}
