// Package audit reads kube-apiserver's audit log (JSON lines, see
// controlplane.Options.AuditLog) and measures, from outside the collectors,
// when each replica's sub-receivers were active: every request a replica's
// ServiceAccount made to the API server, other than its Lease requests
// (those are the election, not the group), is activity from the moment the
// API server received it to the moment it completed; a watch is active for
// as long as it stays open. Add the replica's exports (Actor) and compare
// replicas with Overlaps (overlap.go: the categories of overlap).
//
// The times are kube-apiserver's clock (microseconds); it runs on the same
// host as the harness, so they compare with the harness's wall clock.
package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// The audit stages (k8s.io/apiserver/pkg/apis/audit) this package reads.
const (
	StageRequestReceived  = "RequestReceived"
	StageResponseStarted  = "ResponseStarted" // long-running requests (watch) only
	StageResponseComplete = "ResponseComplete"
	StagePanic            = "Panic"
)

// entry is the part of one audit log line (an audit.k8s.io/v1 Event) this
// package reads.
type entry struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
	StageTimestamp           time.Time `json:"stageTimestamp"`
}

// Request is one API request, from its audit events.
type Request struct {
	AuditID  string
	User     string
	Verb     string // get, list, watch, create, update, ...
	URI      string
	Resource string // objectRef: "" for non-resource URLs (discovery)
	APIGroup string
	Received time.Time // requestReceivedTimestamp
	Started  time.Time // ResponseStarted (watches); zero otherwise
	Ended    time.Time // ResponseComplete or Panic; zero while open
	Code     int       // response code, once ended
}

// Open reports whether the request has not completed (as far as the log
// read so far says).
func (r Request) Open() bool { return r.Ended.IsZero() }

// Lease reports whether r is a request on a Lease: leader election, not
// group activity.
func (r Request) Lease() bool {
	return r.APIGroup == "coordination.k8s.io" && r.Resource == "leases"
}

// Log follows an audit log file from the offset it had when NewLog was
// called, keeping the requests of the users whose name starts with a
// prefix. Its methods are safe for concurrent use.
type Log struct {
	path   string
	prefix string

	mu      sync.Mutex
	off     int64
	partial []byte // an incomplete last line
	reqs    map[string]*Request
	order   []string // audit IDs in order of first sight
}

// NewLog follows path (which need not exist yet) from its current end,
// for the users whose name starts with userPrefix (e.g.
// cluster.ServiceAccountUser(ns, "") for every ServiceAccount of ns).
func NewLog(path, userPrefix string) (*Log, error) {
	l := &Log{path: path, prefix: userPrefix, reqs: map[string]*Request{}}
	st, err := os.Stat(path)
	switch {
	case err == nil:
		l.off = st.Size()
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	return l, nil
}

// Poll reads what was appended to the file since the last Poll.
func (l *Log) Poll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read only
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	l.off += int64(len(data))
	data = append(l.partial, data...)
	last := bytes.LastIndexByte(data, '\n')
	l.partial = append([]byte(nil), data[last+1:]...)
	return l.add(data[:last+1])
}

// add records the events of complete lines; l.mu is held.
func (l *Log) add(lines []byte) error {
	needle := []byte(l.prefix) // cheap pre-filter; the user is checked after decoding
	sc := bufio.NewScanner(bytes.NewReader(lines))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	var errs []error
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, needle) {
			continue
		}
		var ev entry
		if err := json.Unmarshal(line, &ev); err != nil {
			errs = append(errs, err)
			continue
		}
		if strings.HasPrefix(ev.User.Username, l.prefix) {
			l.record(ev)
		}
	}
	return errors.Join(append(errs, sc.Err())...)
}

func (l *Log) record(ev entry) {
	r, ok := l.reqs[ev.AuditID]
	if !ok {
		r = &Request{AuditID: ev.AuditID, User: ev.User.Username, Verb: ev.Verb, URI: ev.RequestURI, Received: ev.RequestReceivedTimestamp}
		if ev.ObjectRef != nil {
			r.Resource, r.APIGroup = ev.ObjectRef.Resource, ev.ObjectRef.APIGroup
		}
		l.reqs[ev.AuditID] = r
		l.order = append(l.order, ev.AuditID)
	}
	switch ev.Stage {
	case StageResponseStarted:
		r.Started = ev.StageTimestamp
	case StageResponseComplete, StagePanic:
		r.Ended = ev.StageTimestamp
		if ev.ResponseStatus != nil {
			r.Code = ev.ResponseStatus.Code
		}
	}
}

// Requests returns the requests read so far, in the order they were first
// seen.
func (l *Log) Requests() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Request, len(l.order))
	for i, id := range l.order {
		out[i] = *l.reqs[id]
	}
	return out
}

// Interval is a span of activity, [Start, End].
type Interval struct {
	Start, End time.Time
}

// Duration is End - Start.
func (iv Interval) Duration() time.Duration { return iv.End.Sub(iv.Start) }

// RequestIntervals are user's requests other than Lease requests, each
// from Received to Ended, ordered by Received. A request still open ends at
// the first of serverExits (when kube-apiserver exited: no request outlives
// the process that serves it) after it was received, else at end.
func RequestIntervals(reqs []Request, user string, serverExits []time.Time, end time.Time) []Interval {
	exits := append([]time.Time(nil), serverExits...)
	sort.Slice(exits, func(i, j int) bool { return exits[i].Before(exits[j]) })
	var ivs []Interval
	for _, r := range reqs {
		if r.User != user || r.Lease() {
			continue
		}
		e := r.Ended
		if e.IsZero() {
			e = end
			for _, x := range exits {
				if x.After(r.Received) {
					e = x
					break
				}
			}
		}
		if e.Before(r.Received) {
			e = r.Received
		}
		ivs = append(ivs, Interval{r.Received, e})
	}
	sort.SliceStable(ivs, func(i, j int) bool { return ivs[i].Start.Before(ivs[j].Start) })
	return ivs
}

// Activity is user's activity: the union of its RequestIntervals, merged
// and sorted.
func Activity(reqs []Request, user string, serverExits []time.Time, end time.Time) []Interval {
	return Union(RequestIntervals(reqs, user, serverExits, end))
}

// Union merges intervals that overlap or touch, sorted by Start.
func Union(ivs []Interval) []Interval {
	ivs = append([]Interval(nil), ivs...)
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].Start.Before(ivs[j].Start) })
	var out []Interval
	for _, iv := range ivs {
		if k := len(out) - 1; k >= 0 && !iv.Start.After(out[k].End) {
			if iv.End.After(out[k].End) {
				out[k].End = iv.End
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// ReadAll reads the whole file at path: the requests of the users whose
// name starts with userPrefix.
func ReadAll(path, userPrefix string) ([]Request, error) {
	l := &Log{path: path, prefix: userPrefix, reqs: map[string]*Request{}}
	err := l.Poll()
	return l.Requests(), err
}

// Settle polls the file every 100ms until no request read is open, or
// timeout has passed: once its clients are gone the API server logs the
// end of each of their requests. It returns the requests read.
func (l *Log) Settle(timeout time.Duration) ([]Request, error) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := l.Poll(); err != nil {
			return l.Requests(), err
		}
		reqs := l.Requests()
		open := false
		for _, r := range reqs {
			open = open || r.Open()
		}
		if !open || time.Now().After(deadline) {
			return reqs, nil
		}
		<-tick.C
	}
}
