package fleet

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"time"
)

// Counts is what a replica exported.
type Counts struct {
	MetricBatches int // lines of ExportMetricsServiceRequest
	Metrics       int // metrics (name + data points)
	DataPoints    int
	LogBatches    int // lines of ExportLogsServiceRequest
	LogRecords    int // k8s_events: one per Kubernetes Event
}

func (c *Counts) add(b Batch) {
	switch b.Signal {
	case "metrics":
		c.MetricBatches++
		c.Metrics += b.Metrics
		c.DataPoints += b.DataPoints
	case "logs":
		c.LogBatches++
		c.LogRecords += b.LogRecords
	}
}

// ExportSlack is how long before the harness read a batch it may have been
// produced: the file exporter's flush_interval (1s in
// distribution/config.yaml and e2e/peer/config.yaml), the polling of the
// output (PollInterval, 250ms) and an ample margin for a loaded machine.
const ExportSlack = 3 * time.Second

// Batch is one line of the file exporter's output.
type Batch struct {
	At          time.Time // when the harness read it (monotonic clock; up to ~1.5s after export)
	Signal      string    // "metrics" or "logs"
	Metrics     int
	DataPoints  int
	MetricNames []string
	LogRecords  int
	EventUIDs   []string // k8s.event.uid of each log record, if present
}

// otlpJSON is the part of the file exporter's OTLP/JSON lines we count.
type otlpJSON struct {
	ResourceMetrics []struct {
		ScopeMetrics []struct {
			Metrics []struct {
				Name                 string   `json:"name"`
				Gauge                *dataPts `json:"gauge"`
				Sum                  *dataPts `json:"sum"`
				Histogram            *dataPts `json:"histogram"`
				ExponentialHistogram *dataPts `json:"exponentialHistogram"`
				Summary              *dataPts `json:"summary"`
			} `json:"metrics"`
		} `json:"scopeMetrics"`
	} `json:"resourceMetrics"`
	ResourceLogs []struct {
		ScopeLogs []struct {
			LogRecords []struct {
				Attributes []struct {
					Key   string `json:"key"`
					Value struct {
						StringValue string `json:"stringValue"`
					} `json:"value"`
				} `json:"attributes"`
			} `json:"logRecords"`
		} `json:"scopeLogs"`
	} `json:"resourceLogs"`
}

type dataPts struct {
	DataPoints []json.RawMessage `json:"dataPoints"`
}

// parseBatch parses one output line.
func parseBatch(line []byte, at time.Time) (Batch, bool) {
	var o otlpJSON
	if err := json.Unmarshal(line, &o); err != nil {
		return Batch{}, false
	}
	b := Batch{At: at}
	switch {
	case o.ResourceMetrics != nil:
		b.Signal = "metrics"
		for _, rm := range o.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					b.Metrics++
					b.MetricNames = append(b.MetricNames, m.Name)
					for _, d := range []*dataPts{m.Gauge, m.Sum, m.Histogram, m.ExponentialHistogram, m.Summary} {
						if d != nil {
							b.DataPoints += len(d.DataPoints)
						}
					}
				}
			}
		}
	case o.ResourceLogs != nil:
		b.Signal = "logs"
		for _, rl := range o.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					b.LogRecords++
					for _, a := range lr.Attributes {
						if a.Key == "k8s.event.uid" {
							b.EventUIDs = append(b.EventUIDs, a.Value.StringValue)
						}
					}
				}
			}
		}
	default:
		return Batch{}, false
	}
	return b, true
}

// outputTail reads complete lines appended to a file since the last call.
type outputTail struct {
	path    string
	offset  int64
	partial []byte
}

// read returns the complete new lines (the file may not exist yet; it may
// be truncated, then it is read from the start again).
func (t *outputTail) read() [][]byte {
	f, err := os.Open(t.path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }() // read only
	if fi, err := f.Stat(); err == nil && fi.Size() < t.offset {
		t.offset, t.partial = 0, nil
	}
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		return nil
	}
	data, err := io.ReadAll(f)
	if err != nil || len(data) == 0 {
		return nil
	}
	t.offset += int64(len(data))
	data = append(t.partial, data...)
	var lines [][]byte
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if len(bytes.TrimSpace(data[:i])) > 0 {
			lines = append(lines, data[:i])
		}
		data = data[i+1:]
	}
	t.partial = append([]byte(nil), data...)
	return lines
}
