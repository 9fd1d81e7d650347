package audit

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	user1 = "system:serviceaccount:ns-1:replica-1"
	user2 = "system:serviceaccount:ns-1:replica-2"
)

// at is 2026-11-27T07:00:00Z + s seconds (the fixture's times).
func at(s float64) time.Time {
	return time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC).Add(time.Duration(math.Round(s*1e6)) * time.Microsecond)
}

func TestReadAll(t *testing.T) {
	reqs, err := ReadAll("testdata/audit.log", "system:serviceaccount:ns-1:")
	require.NoError(t, err)
	require.Len(t, reqs, 5, "the other namespace's ServiceAccount is left out")

	lease := reqs[0]
	assert.True(t, lease.Lease())
	assert.Equal(t, user1, lease.User)
	assert.Equal(t, "get", lease.Verb)
	assert.Equal(t, 200, lease.Code)
	assert.Equal(t, at(0.0001), lease.Received)
	assert.Equal(t, at(0.0021), lease.Ended)

	watch := reqs[2]
	assert.False(t, watch.Lease())
	assert.Equal(t, "watch", watch.Verb)
	assert.Equal(t, "pods", watch.Resource)
	assert.Equal(t, at(1.005), watch.Received)
	assert.Equal(t, at(1.006), watch.Started)
	assert.Equal(t, at(5), watch.Ended)
	assert.False(t, watch.Open())

	open := reqs[4]
	assert.Equal(t, user2, open.User)
	assert.Equal(t, "events", open.Resource)
	assert.True(t, open.Open(), "a watch with no ResponseComplete yet")
	assert.Equal(t, at(5.505), open.Started)
}

func TestActivity(t *testing.T) {
	reqs, err := ReadAll("testdata/audit.log", "system:serviceaccount:ns-1:")
	require.NoError(t, err)

	// The Lease get is not group activity; the list ends 1ms before the
	// watch starts: two intervals.
	assert.Equal(t, []Interval{{at(1), at(1.004)}, {at(1.005), at(5)}}, Activity(reqs, user1, nil, at(100)))

	// The open watch lasts until the end, or until kube-apiserver exited.
	assert.Equal(t, []Interval{{at(5.5), at(5.503)}, {at(5.504), at(10)}}, Activity(reqs, user2, nil, at(10)))
	assert.Equal(t, []Interval{{at(5.5), at(5.503)}, {at(5.504), at(7)}},
		Activity(reqs, user2, []time.Time{at(8), at(3), at(7)}, at(10)), "the first exit after the request")
	assert.Empty(t, Activity(reqs, "system:serviceaccount:ns-1:replica-3", nil, at(10)))
}

func TestUnion(t *testing.T) {
	assert.Equal(t, []Interval{{at(0), at(3)}, {at(4), at(5)}},
		Union([]Interval{{at(4), at(5)}, {at(1), at(2)}, {at(0), at(1)}, {at(0.5), at(3)}}), "touching intervals merge")
	assert.Empty(t, Union(nil))
}

func TestRequestIntervals(t *testing.T) {
	reqs, err := ReadAll("testdata/audit.log", "system:serviceaccount:ns-1:")
	require.NoError(t, err)
	// Not merged: the list and the watch (the Lease get is left out).
	assert.Equal(t, []Interval{{at(1), at(1.004)}, {at(1.005), at(5)}}, RequestIntervals(reqs, user1, nil, at(100)))
	assert.Equal(t, []Interval{{at(5.5), at(5.503)}, {at(5.504), at(7)}}, RequestIntervals(reqs, user2, []time.Time{at(7)}, at(10)))
}

// Each replica's requests are one interval each here (a watch, say).
func requestsOnly(name string, ivs ...Interval) Actor { return Actor{Name: name, Requests: ivs} }

func TestOverlaps(t *testing.T) {
	rs := []Actor{
		requestsOnly("replica-1", Interval{at(0), at(10)}, Interval{at(20), at(21)}),
		requestsOnly("replica-2", Interval{at(10), at(15)}), // touches replica-1: no overlap
		requestsOnly("replica-3", Interval{at(14), at(20.5)}),
	}
	os := Overlaps(rs, 3*time.Second)
	require.Len(t, os, 2)
	// replica-2's request was open 1s after replica-3's activity began;
	// replica-3's 0.5s after replica-1's began again.
	assert.Equal(t, Overlap{Kind: Tail, A: "replica-2", B: "replica-3", AInterval: Interval{at(10), at(15)}, BInterval: Interval{at(14), at(20.5)}, Span: Interval{at(14), at(15)}}, os[0])
	assert.Equal(t, Overlap{Kind: Tail, A: "replica-3", B: "replica-1", AInterval: Interval{at(14), at(20.5)}, BInterval: Interval{at(20), at(21)}, Span: Interval{at(20), at(20.5)}}, os[1])
	assert.Equal(t, time.Second, os[0].TailLength())
	assert.Equal(t, os, Counted(os), "both tails are longer than TailBound")
	assert.Equal(t, 1500*time.Millisecond, APIOverlap(os))
	assert.Equal(t, "closing tail longer than 250ms: replica-2's request [07:00:10.000000, 07:00:15.000000] ended 1s after replica-3's activity [07:00:14.000000, 07:00:20.500000] began", os[0].String())

	assert.Empty(t, Overlaps(rs[:2], time.Second))
	assert.Zero(t, APIOverlap(nil))
}

// The three kinds, and the bound: A's activity began first, B's at 10.
func TestOverlapKinds(t *testing.T) {
	b := requestsOnly("B", Interval{at(10), at(20)})
	check := func(a Actor) []Overlap { return Overlaps([]Actor{a, b}, 3*time.Second) }

	within := check(requestsOnly("A", Interval{at(0), at(10.25)}))
	require.Len(t, within, 1)
	assert.Equal(t, Tail, within[0].Kind)
	assert.Equal(t, TailBound, within[0].TailLength())
	assert.False(t, within[0].Counts(), "a closing tail of TailBound")
	assert.Empty(t, Counted(within))
	assert.Zero(t, APIOverlap(within))
	assert.Contains(t, within[0].String(), "closing tail within 250ms")

	beyond := check(requestsOnly("A", Interval{at(0), at(10.251)}))
	require.Len(t, Counted(beyond), 1, "a closing tail 1ms longer than TailBound")
	assert.Equal(t, 251*time.Millisecond, APIOverlap(beyond))

	// A began a request 1ms after B's activity began (its watch ends
	// in time): always an overlap, however short.
	begun := check(requestsOnly("A", Interval{at(0), at(10.1)}, Interval{at(10.001), at(10.002)}))
	require.Len(t, begun, 2)
	assert.Equal(t, Overlap{Kind: Begun, A: "A", B: "B", AInterval: Interval{at(10.001), at(10.002)}, BInterval: Interval{at(10), at(20)}, Span: Interval{at(10.001), at(10.002)}}, begun[1])
	assert.Equal(t, []Overlap{begun[1]}, Counted(begun))
	assert.Equal(t, time.Millisecond, APIOverlap(begun))
	assert.Contains(t, begun[1].String(), "request begun during another replica's activity: A began a request")

	// B began first here: A's activity is B's closing tail's concern.
	late := Overlaps([]Actor{requestsOnly("A", Interval{at(10.1), at(30)}), b}, 3*time.Second)
	require.Len(t, late, 1)
	assert.Equal(t, "B", late[0].A)
	assert.Equal(t, Tail, late[0].Kind)
	assert.True(t, late[0].Counts(), "B's request stayed open 9.9s after A's activity began")

	// Only touching: none.
	assert.Empty(t, check(requestsOnly("A", Interval{at(0), at(10)})))
}

// A replica partitioned from the API server has no API activity but keeps
// exporting from its cache: a batch counts against another replica only if
// its whole export window lies in that replica's activity.
func TestOverlapsOfExports(t *testing.T) {
	slack := 3 * time.Second
	rs := []Actor{
		// Cut off at 10; its batches read at 11 and 12.5 may have been
		// produced before 10 (handover faster than slack), the one read at
		// 16 was produced after replica-2 started at 12.
		{Name: "replica-1", Requests: []Interval{{at(0), at(10)}}, Exports: []time.Time{at(5), at(11), at(12.5), at(16)}},
		{Name: "replica-2", Requests: []Interval{{at(12), at(30)}}, Exports: []time.Time{at(14)}},
	}
	os := Overlaps(rs, slack)
	require.Len(t, os, 1)
	assert.Equal(t, Overlap{Kind: Export, A: "replica-1", B: "replica-2", AInterval: Interval{at(13), at(16)}, BInterval: Interval{at(12), at(30)}, Span: Interval{at(13), at(16)}}, os[0])
	assert.True(t, os[0].Counts())
	assert.Equal(t, "data exported during another replica's activity: replica-1 exported a batch produced in [07:00:13.000000, 07:00:16.000000], entirely within replica-2's activity [07:00:12.000000, 07:00:30.000000]", os[0].String())
	assert.Zero(t, APIOverlap(os), "no API overlap: only an export")
	assert.Equal(t, Interval{at(13), at(16)}, ExportWindow(at(16), slack))
}

// The shape of the audit log of a gate run that reported an overlap of
// 1 ms (TestAPIServerDownLongerThanLease, final shutdown): replica-1 stops
// its group and releases the Lease at T = 07:10:00 (its update completes);
// replica-2 takes it, and its group's first request arrives at T+5ms; the
// watch that replica-1's k8s_cluster opened during its term ends at T+9ms
// (Shutdown returned before the informer's goroutine closed it). A closing
// tail of 4 ms: no overlap. The same log with that watch ending later than
// TailBound after replica-2 began, or with a request replica-1 began after
// replica-2 had, fails.
func TestClosingTailAtHandover(t *testing.T) {
	const (
		prefix  = "system:serviceaccount:apiserver-down-longer-than-lease-7:"
		tailEnd = `"stageTimestamp":"2026-11-27T07:10:00.009000Z"`
		// A list by replica-1 at T+6ms (a lingering informer's re-list).
		relist = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"7e57a11a-0000-4000-8000-000000000011","stage":"RequestReceived","requestURI":"/api/v1/pods?limit=500\u0026resourceVersion=0","verb":"list","user":{"username":"system:serviceaccount:apiserver-down-longer-than-lease-7:replica-1","uid":"5c0d6b8e-7a51-4f0b-9d0e-2a4b1f3c9e11","groups":["system:serviceaccounts","system:serviceaccounts:apiserver-down-longer-than-lease-7","system:authenticated"]},"sourceIPs":["127.0.0.1"],"userAgent":"otelcol-leader/v0.0.0 (linux/amd64) kubernetes/$Format","objectRef":{"resource":"pods","apiVersion":"v1"},"requestReceivedTimestamp":"2026-11-27T07:10:00.006000Z","stageTimestamp":"2026-11-27T07:10:00.006000Z"}
{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"7e57a11a-0000-4000-8000-000000000011","stage":"ResponseComplete","requestURI":"/api/v1/pods?limit=500\u0026resourceVersion=0","verb":"list","user":{"username":"system:serviceaccount:apiserver-down-longer-than-lease-7:replica-1","uid":"5c0d6b8e-7a51-4f0b-9d0e-2a4b1f3c9e11","groups":["system:serviceaccounts","system:serviceaccounts:apiserver-down-longer-than-lease-7","system:authenticated"]},"sourceIPs":["127.0.0.1"],"userAgent":"otelcol-leader/v0.0.0 (linux/amd64) kubernetes/$Format","objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-27T07:10:00.006000Z","stageTimestamp":"2026-11-27T07:10:00.008000Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"otel-leader-k8s-receivers-apiserver-down-longer-than-lease-7\" of ClusterRole \"otel-leader-k8s-receivers\" to ServiceAccount \"replica-1/apiserver-down-longer-than-lease-7\""}}
`
	)
	T := time.Date(2026, 11, 27, 7, 10, 0, 0, time.UTC)
	ms := func(n float64) time.Time { return T.Add(time.Duration(n * float64(time.Millisecond))) }
	base, err := os.ReadFile("testdata/tail-handover.log")
	require.NoError(t, err)
	require.Equal(t, 1, bytes.Count(base, []byte(tailEnd)))
	overlaps := func(t *testing.T, log []byte) []Overlap {
		path := filepath.Join(t.TempDir(), "audit.log")
		require.NoError(t, os.WriteFile(path, log, 0o644))
		reqs, err := ReadAll(path, prefix)
		require.NoError(t, err)
		var rs []Actor
		for _, name := range []string{"replica-1", "replica-2", "replica-3"} {
			rs = append(rs, Actor{Name: name, Requests: RequestIntervals(reqs, prefix+name, nil, ms(5000))})
		}
		require.Empty(t, rs[2].Requests, "a standby: Lease requests only")
		require.Equal(t, ms(5), rs[1].Activity()[0].Start, "replica-2's group begins at T+5ms (its Lease requests left out)")
		return Overlaps(rs, 3*time.Second)
	}
	tail := Overlap{Kind: Tail, A: "replica-1", B: "replica-2",
		AInterval: Interval{ms(-2500), ms(9)}, BInterval: Interval{ms(5), ms(7.2)}, Span: Interval{ms(5), ms(7.2)}}

	t.Run("tail within the bound", func(t *testing.T) {
		os := overlaps(t, base)
		assert.Equal(t, []Overlap{tail}, os)
		assert.Equal(t, 4*time.Millisecond, os[0].TailLength())
		assert.Empty(t, Counted(os))
		assert.Zero(t, APIOverlap(os))
	})
	t.Run("tail beyond the bound", func(t *testing.T) {
		os := overlaps(t, bytes.Replace(base, []byte(tailEnd), []byte(`"stageTimestamp":"2026-11-27T07:10:00.256000Z"`), 1))
		require.Len(t, os, 1)
		assert.Equal(t, Tail, os[0].Kind)
		assert.Equal(t, TailBound+time.Millisecond, os[0].TailLength())
		assert.Equal(t, os, Counted(os))
		assert.Equal(t, TailBound+time.Millisecond, APIOverlap(os))
	})
	t.Run("request begun after the handover", func(t *testing.T) {
		os := overlaps(t, append(slices.Clone(base), relist...))
		begun := Overlap{Kind: Begun, A: "replica-1", B: "replica-2",
			AInterval: Interval{ms(6), ms(8)}, BInterval: Interval{ms(5), ms(7.2)}, Span: Interval{ms(6), ms(7.2)}}
		assert.Equal(t, []Overlap{tail, begun}, os)
		assert.Equal(t, []Overlap{begun}, Counted(os))
		assert.Equal(t, 1200*time.Microsecond, APIOverlap(os))
	})
}

// Log follows a file from where it ended, and keeps a line written in two
// parts for the Poll that completes it.
func TestLogFollows(t *testing.T) {
	data, err := os.ReadFile("testdata/audit.log")
	require.NoError(t, err)
	lines := splitLines(data)
	path := filepath.Join(t.TempDir(), "audit.log")
	require.NoError(t, os.WriteFile(path, join(lines[:2]), 0o644)) // before NewLog: not read

	l, err := NewLog(path, "system:serviceaccount:ns-1:")
	require.NoError(t, err)
	require.NoError(t, l.Poll())
	assert.Empty(t, l.Requests())

	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	defer func() { assert.NoError(t, f.Close()) }()
	third := lines[2]
	_, err = f.Write(third[:100])
	require.NoError(t, err)
	require.NoError(t, l.Poll())
	assert.Empty(t, l.Requests(), "half a line")
	_, err = f.Write(append(third[100:], '\n'))
	require.NoError(t, err)
	require.NoError(t, l.Poll())
	require.Len(t, l.Requests(), 1)
	assert.True(t, l.Requests()[0].Open(), "received, not complete yet")

	_, err = f.Write(join(lines[3:]))
	require.NoError(t, err)
	require.NoError(t, l.Poll())
	reqs := l.Requests()
	require.Len(t, reqs, 4, "the list, two watches and the events list")
	assert.Equal(t, "list", reqs[0].Verb)
	assert.False(t, reqs[0].Open())

	missing, err := NewLog(filepath.Join(t.TempDir(), "none.log"), "")
	require.NoError(t, err)
	require.NoError(t, missing.Poll(), "a log that does not exist yet is empty")
}

func splitLines(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := 0
		for i < len(data) && data[i] != '\n' {
			i++
		}
		out = append(out, data[:i])
		if i < len(data) {
			i++
		}
		data = data[i:]
	}
	return out
}

func join(lines [][]byte) []byte {
	var out []byte
	for _, l := range lines {
		out = append(append(out, l...), '\n')
	}
	return out
}

// Settle waits for open requests to complete, and gives up after its
// timeout.
func TestSettle(t *testing.T) {
	data, err := os.ReadFile("testdata/audit.log")
	require.NoError(t, err)
	lines := splitLines(data)
	path := filepath.Join(t.TempDir(), "audit.log")
	require.NoError(t, os.WriteFile(path, join(lines[:5]), 0o644)) // the pods watch received, not complete
	l := &Log{path: path, prefix: "system:serviceaccount:ns-1:", reqs: map[string]*Request{}}
	reqs, err := l.Settle(300 * time.Millisecond)
	require.NoError(t, err)
	require.Len(t, reqs, 3)
	assert.True(t, reqs[2].Open(), "timed out")

	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(join([][]byte{lines[7]})) // its ResponseComplete
	require.NoError(t, errors.Join(err, f.Close()))
	reqs, err = l.Settle(time.Minute)
	require.NoError(t, err)
	assert.False(t, reqs[2].Open())
}

// A real audit log (kube-apiserver v1.35.4, scenario
// TestLeaderSIGTERMHandsOver): replica-1 leads, gets SIGTERM, stops its
// group and releases the Lease; replica-3 takes over (copied while it
// led). From outside: no overlap, replica-1's last request ends before
// replica-3's first.
func TestRealSIGTERMHandover(t *testing.T) {
	gz, err := os.Open("testdata/sigterm-handover.log.gz")
	require.NoError(t, err)
	defer func() { _ = gz.Close() }()
	zr, err := gzip.NewReader(gz)
	require.NoError(t, err)
	data, err := io.ReadAll(zr)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "audit.log")
	require.NoError(t, os.WriteFile(path, data, 0o644))

	const prefix = "system:serviceaccount:leader-sigtermhands-over-1:"
	reqs, err := ReadAll(path, prefix)
	require.NoError(t, err)
	watches := map[string]int{}
	for _, r := range reqs {
		if r.Verb == "watch" {
			watches[r.User]++
			assert.False(t, r.Started.IsZero(), "a watch has a ResponseStarted stage")
		}
		// The log was copied while replica-3 led: its watches are open,
		// everything else is complete.
		assert.Equal(t, r.User == prefix+"replica-3" && r.Verb == "watch", r.Open(), "%s %s %s", r.User, r.Verb, r.URI)
	}
	assert.Equal(t, map[string]int{prefix + "replica-1": 14, prefix + "replica-3": 14}, watches, "the informers of k8s_cluster and k8s_events")

	var rs []Actor
	for _, name := range []string{"replica-1", "replica-2", "replica-3"} {
		rs = append(rs, Actor{Name: name, Requests: RequestIntervals(reqs, prefix+name, nil, time.Now())})
	}
	act1, act3 := rs[0].Activity(), rs[2].Activity()
	require.NotEmpty(t, act1)
	assert.Empty(t, rs[1].Requests, "a standby makes Lease requests only")
	require.NotEmpty(t, act3)
	last1, first3 := act1[len(act1)-1].End, act3[0].Start
	assert.True(t, last1.Before(first3), "replica-1 done at %s, replica-3 starts at %s", last1, first3)
	assert.Empty(t, Overlaps(rs, 3*time.Second))
}
