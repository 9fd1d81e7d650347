package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// contrib is the prefix of the receivers' instrumentation scope names.
const contrib = "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/"

// sourceOf names the receiver that produced a batch's scope: its
// instrumentation scope, and for http_check whether receiver_creator created
// it (it sets the discovered endpoint's k8s.* resource attributes).
func sourceOf(scope string, resource map[string]string) string {
	switch strings.TrimPrefix(scope, contrib) {
	case "k8sclusterreceiver":
		return "k8s_cluster"
	case "k8seventsreceiver":
		return "k8s_events"
	case "k8sobjectsreceiver":
		return "k8s_objects"
	case "prometheusreceiver":
		return "prometheus"
	case "httpcheckreceiver":
		if resource["k8s.namespace.name"] != "" {
			return "receiver_creator"
		}
		return "http_check"
	}
	return "unknown scope " + scope
}

// item is what one scope of one exported line held.
type item struct {
	At     time.Time // when the test read it
	Source string    // sourceOf
	N      int       // data points or log records
	// Names: metric names, or the k8s.resource.name of k8s_objects' records.
	Names []string
}

// sink follows one replica's file exporter output in the background.
type sink struct {
	path string

	mu      sync.Mutex
	off     int64
	partial []byte
	items   []item
}

func (s *sink) poll(now time.Time) {
	f, err := os.Open(s.path)
	if err != nil {
		return // not written yet
	}
	defer func() { _ = f.Close() }() // read only
	if _, err := f.Seek(s.off, io.SeekStart); err != nil {
		return
	}
	data, err := io.ReadAll(f)
	if err != nil || len(data) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.off += int64(len(data))
	data = append(s.partial, data...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		s.items = append(s.items, parseLine(data[:i], now)...)
		data = data[i+1:]
	}
	s.partial = append([]byte(nil), data...)
}

// follow polls every 200ms until ctx ends.
func (s *sink) follow(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		s.poll(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// since returns the items read after t.
func (s *sink) since(t time.Time) []item {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []item
	for _, it := range s.items {
		if it.At.After(t) {
			out = append(out, it)
		}
	}
	return out
}

// between returns the items read in (from, to].
func (s *sink) between(from, to time.Time) []item {
	var out []item
	for _, it := range s.since(from) {
		if !it.At.After(to) {
			out = append(out, it)
		}
	}
	return out
}

type otlpAttr struct {
	Key   string `json:"key"`
	Value struct {
		StringValue string `json:"stringValue"`
	} `json:"value"`
}

type otlpResource struct {
	Attributes []otlpAttr `json:"attributes"`
}

type otlpScope struct {
	Name string `json:"name"`
}

type otlpPoints struct {
	DataPoints []json.RawMessage `json:"dataPoints"`
}

type otlpLine struct {
	ResourceMetrics []struct {
		Resource     otlpResource `json:"resource"`
		ScopeMetrics []struct {
			Scope   otlpScope `json:"scope"`
			Metrics []struct {
				Name      string      `json:"name"`
				Gauge     *otlpPoints `json:"gauge"`
				Sum       *otlpPoints `json:"sum"`
				Histogram *otlpPoints `json:"histogram"`
				Summary   *otlpPoints `json:"summary"`
			} `json:"metrics"`
		} `json:"scopeMetrics"`
	} `json:"resourceMetrics"`
	ResourceLogs []struct {
		Resource  otlpResource `json:"resource"`
		ScopeLogs []struct {
			Scope      otlpScope `json:"scope"`
			LogRecords []struct {
				Attributes []otlpAttr `json:"attributes"`
			} `json:"logRecords"`
		} `json:"scopeLogs"`
	} `json:"resourceLogs"`
}

func attrs(as []otlpAttr) map[string]string {
	m := make(map[string]string, len(as))
	for _, a := range as {
		m[a.Key] = a.Value.StringValue
	}
	return m
}

// parseLine splits one OTLP/JSON line of the file exporter by scope.
func parseLine(line []byte, at time.Time) []item {
	var l otlpLine
	if err := json.Unmarshal(line, &l); err != nil {
		return nil
	}
	var out []item
	for _, rm := range l.ResourceMetrics {
		res := attrs(rm.Resource.Attributes)
		for _, sm := range rm.ScopeMetrics {
			it := item{At: at, Source: sourceOf(sm.Scope.Name, res)}
			for _, m := range sm.Metrics {
				it.Names = append(it.Names, m.Name)
				for _, p := range []*otlpPoints{m.Gauge, m.Sum, m.Histogram, m.Summary} {
					if p != nil {
						it.N += len(p.DataPoints)
					}
				}
			}
			out = append(out, it)
		}
	}
	for _, rl := range l.ResourceLogs {
		res := attrs(rl.Resource.Attributes)
		for _, sl := range rl.ScopeLogs {
			it := item{At: at, Source: sourceOf(sl.Scope.Name, res)}
			for _, lr := range sl.LogRecords {
				it.N++
				if n := attrs(lr.Attributes)["k8s.resource.name"]; n != "" && !slices.Contains(it.Names, n) {
					it.Names = append(it.Names, n)
				}
			}
			out = append(out, it)
		}
	}
	return out
}

// perSource sums items by source: count and the set of names.
func perSource(items []item) (counts map[string]int, names map[string]map[string]bool) {
	counts, names = map[string]int{}, map[string]map[string]bool{}
	for _, it := range items {
		counts[it.Source] += it.N
		if names[it.Source] == nil {
			names[it.Source] = map[string]bool{}
		}
		for _, n := range it.Names {
			names[it.Source][n] = true
		}
	}
	return counts, names
}

// processStats are a replica's goroutines and heap, from its pprof
// extension.
type processStats struct {
	Goroutines int
	// HTTPConns are the goroutines of HTTP/1 client connections
	// (net/http.persistConn's read and write loops, two per connection):
	// idle keep-alive connections a stopped receiver left to its
	// transport's idle timeout.
	HTTPConns int
	HeapAlloc uint64 // bytes, after a garbage collection (gc=1)
	profile   string // the goroutine profile (debug=1), for failure messages
}

// Others are the goroutines other than HTTPConns.
func (s processStats) Others() int { return s.Goroutines - s.HTTPConns }

func readStats(ctx context.Context, endpoint string) (processStats, error) {
	var st processStats
	var err error
	st.profile, err = pprofText(ctx, "http://"+endpoint+"/debug/pprof/goroutine?debug=1")
	if err != nil {
		return st, err
	}
	if st.Goroutines, st.HTTPConns, err = parseGoroutines(st.profile); err != nil {
		return st, err
	}
	h, err := pprofLine(ctx, "http://"+endpoint+"/debug/pprof/heap?debug=1&gc=1", "# HeapAlloc = ")
	if err != nil {
		return st, err
	}
	if st.HeapAlloc, err = strconv.ParseUint(h, 10, 64); err != nil {
		return st, fmt.Errorf("heap profile: %w", err)
	}
	return st, nil
}

// parseGoroutines reads a goroutine profile (debug=1): its total, and how
// many goroutines are in stacks through net/http.(*persistConn).
func parseGoroutines(profile string) (total, httpConns int, err error) {
	first, rest, _ := strings.Cut(profile, "\n")
	v, ok := strings.CutPrefix(first, "goroutine profile: total ")
	if !ok {
		return 0, 0, fmt.Errorf("goroutine profile: first line %q", first)
	}
	if total, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
		return 0, 0, fmt.Errorf("goroutine profile: %w", err)
	}
	for _, group := range strings.Split(rest, "\n\n") { // "N @ pcs" then "#\t..." frames
		head, frames, _ := strings.Cut(strings.TrimSpace(group), "\n")
		n, _, ok := strings.Cut(head, " @ ")
		if !ok || !strings.Contains(frames, "net/http.(*persistConn)") {
			continue
		}
		c, err := strconv.Atoi(n)
		if err != nil {
			return 0, 0, fmt.Errorf("goroutine profile: %q: %w", head, err)
		}
		httpConns += c
	}
	return total, httpConns, nil
}

// pprofLine returns what follows prefix on the first line of url's body
// that starts with it.
func pprofLine(ctx context.Context, url, prefix string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }() // read only
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return strings.TrimSpace(v), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no line %q", url, prefix)
}

// pprofText is the whole body of a pprof text endpoint.
func pprofText(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }() // read only
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
