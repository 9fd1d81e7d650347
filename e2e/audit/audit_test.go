package audit

import (
	"compress/gzip"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
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

func TestOverlaps(t *testing.T) {
	rs := []Replica{
		{Name: "replica-1", API: []Interval{{at(0), at(10)}, {at(20), at(21)}}},
		{Name: "replica-2", API: []Interval{{at(10), at(15)}}}, // touches replica-1: no overlap
		{Name: "replica-3", API: []Interval{{at(14), at(20.5)}}},
	}
	os := Overlaps(rs, 3*time.Second)
	require.Len(t, os, 2)
	assert.Equal(t, Overlap{A: "replica-2", B: "replica-3", AInterval: Interval{at(10), at(15)}, BInterval: Interval{at(14), at(20.5)}, Span: Interval{at(14), at(15)}}, os[0])
	assert.Equal(t, Overlap{A: "replica-1", B: "replica-3", AInterval: Interval{at(20), at(21)}, BInterval: Interval{at(14), at(20.5)}, Span: Interval{at(20), at(20.5)}}, os[1])
	assert.Equal(t, 1500*time.Millisecond, APIOverlap(os))
	assert.Contains(t, os[0].String(), "replica-2 API activity [07:00:10.000000, 07:00:15.000000] and replica-3 API activity [07:00:14.000000, 07:00:20.500000] overlap for 1s")

	assert.Empty(t, Overlaps(rs[:2], time.Second))
	assert.Zero(t, APIOverlap(nil))
}

// A replica partitioned from the API server has no API activity but keeps
// exporting from its cache: a batch counts against another replica only if
// its whole export window lies in that replica's activity.
func TestOverlapsOfExports(t *testing.T) {
	slack := 3 * time.Second
	rs := []Replica{
		// Cut off at 10; its batches read at 11 and 12.5 may have been
		// produced before 10 (handover faster than slack), the one read at
		// 16 was produced after replica-2 started at 12.
		{Name: "replica-1", API: []Interval{{at(0), at(10)}}, Exports: []time.Time{at(5), at(11), at(12.5), at(16)}},
		{Name: "replica-2", API: []Interval{{at(12), at(30)}}, Exports: []time.Time{at(14)}},
	}
	os := Overlaps(rs, slack)
	require.Len(t, os, 1)
	assert.Equal(t, Overlap{A: "replica-1", B: "replica-2", AInterval: Interval{at(13), at(16)}, BInterval: Interval{at(12), at(30)}, Export: true, Span: Interval{at(13), at(16)}}, os[0])
	assert.Contains(t, os[0].String(), "replica-1 exported a batch produced in [07:00:13.000000, 07:00:16.000000], entirely within replica-2 API activity [07:00:12.000000, 07:00:30.000000]")
	assert.Zero(t, APIOverlap(os), "no API overlap: only an export")
	assert.Equal(t, Interval{at(13), at(16)}, ExportWindow(at(16), slack))
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

	var rs []Replica
	for _, name := range []string{"replica-1", "replica-2", "replica-3"} {
		rs = append(rs, Replica{Name: name, API: Activity(reqs, prefix+name, nil, time.Now())})
	}
	require.NotEmpty(t, rs[0].API)
	assert.Empty(t, rs[1].API, "a standby makes Lease requests only")
	require.NotEmpty(t, rs[2].API)
	last1, first3 := rs[0].API[len(rs[0].API)-1].End, rs[2].API[0].Start
	assert.True(t, last1.Before(first3), "replica-1 done at %s, replica-3 starts at %s", last1, first3)
	assert.Empty(t, Overlaps(rs, 3*time.Second))
}
