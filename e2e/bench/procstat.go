package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// ProcSample is one reading of a collector process's resources.
type ProcSample struct {
	RSSBytes   int64         // VmRSS of /proc/<pid>/status
	Threads    int           // Threads of /proc/<pid>/status (OS threads)
	CPU        time.Duration // utime + stime of /proc/<pid>/stat, since process start
	Goroutines float64       // from the collector's telemetry; -1 if it exposes none
	HeapAlloc  float64       // otelcol_process_runtime_heap_alloc_bytes; -1 if absent
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100

// ReadProc reads VmRSS, Threads and CPU time of pid from /proc.
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{Goroutines: -1, HeapAlloc: -1}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS": // "12345 kB"
			n, _ := strconv.ParseInt(f[0], 10, 64)
			s.RSSBytes = n * 1024
		case "Threads":
			s.Threads, _ = strconv.Atoi(f[0])
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// pid (comm) state ppid ... : utime and stime are fields 14 and 15,
	// i.e. 12th and 13th after the closing parenthesis of comm.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			s.CPU = time.Duration(ut+st) * time.Second / clockTicks
		}
	}
	return s, nil
}

// Scrape fetches a Prometheus text endpoint and returns its samples as
// "name{labels}" -> value.
func Scrape(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return ParsePrometheusText(body), nil
}

// ParsePrometheusText parses the sample lines of the Prometheus text format.
func ParsePrometheusText(body []byte) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// name{labels} value [timestamp]; label values may hold spaces.
		var key, rest string
		if end := strings.LastIndexByte(line, '}'); end >= 0 {
			key, rest = line[:end+1], line[end+1:]
		} else if sp := strings.IndexByte(line, ' '); sp >= 0 {
			key, rest = line[:sp], line[sp:]
		} else {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[key] = v
	}
	return out
}

// metricName is the name part of a "name{labels}" key.
func metricName(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		return key[:i]
	}
	return key
}

// GoroutineMetric returns the name and value of a goroutine-count metric
// in samples (e.g. go_goroutines, or an OTel runtime metric), if any.
func GoroutineMetric(samples map[string]float64) (string, float64, bool) {
	for key, v := range samples {
		if name := metricName(key); strings.Contains(name, "goroutine") && !strings.HasSuffix(name, "_created") {
			return name, v, true
		}
	}
	return "", 0, false
}

// HeapAllocMetric is the collector's own heap gauge.
const HeapAllocMetric = "otelcol_process_runtime_heap_alloc_bytes"

// SampleCollector reads /proc for pid and, from its telemetry endpoint,
// goroutines (if exposed) and heap. The error is /proc's; a failed scrape
// only leaves the telemetry fields at -1.
func SampleCollector(ctx context.Context, pid int, metricsURL string) (ProcSample, []string, error) {
	s, err := ReadProc(pid)
	if err != nil {
		return s, nil, err
	}
	samples, serr := Scrape(ctx, metricsURL)
	if serr != nil {
		return s, nil, nil
	}
	if _, v, ok := GoroutineMetric(samples); ok {
		s.Goroutines = v
	}
	for key, v := range samples {
		if metricName(key) == HeapAllocMetric {
			s.HeapAlloc = v
		}
	}
	names := make([]string, 0, len(samples))
	for key := range samples {
		names = append(names, metricName(key))
	}
	return s, names, nil
}

// Machine describes the host, for the report.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemoryMiB int64  `json:"memory_mib"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end,omitempty"`
	Note      string `json:"note,omitempty"`
}

// DescribeMachine reads /proc for the host's description.
func DescribeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: LoadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemoryMiB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// LoadAvg is the first three fields of /proc/loadavg.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) > 3 {
		f = f[:3]
	}
	return strings.Join(f, " ")
}
