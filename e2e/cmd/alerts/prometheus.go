package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/proc"
)

const (
	noLeader   = "LeaderReceiverCreatorNoLeader"
	twoLeaders = "LeaderReceiverCreatorTwoLeaders"
	noReplicas = "LeaderReceiverCreatorNoReplicas"
)

// prometheus is a Prometheus server scraping the replicas and evaluating
// the rules.
type prometheus struct {
	p        *proc.Process
	version  string // the first line of prometheus --version
	base     string // http://127.0.0.1:<port>
	interval time.Duration
	client   *http.Client
}

func startPrometheus(ctx context.Context, o options, targets []string) (*prometheus, error) {
	dir := filepath.Join(o.workDir, "prometheus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = strconv.Quote(t)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
rule_files:
  - %[2]q
scrape_configs:
  - job_name: otelcol-leader
    static_configs:
      - targets: [%[3]s]
`, o.interval, o.rules, strings.Join(quoted, ", "))
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, o.prometheus, "--version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w: %s", o.prometheus, err, out)
	}
	version, _, _ := strings.Cut(string(out), "\n") // prometheus, version v0.311.3 (branch: ...)
	version, _, _ = strings.Cut(strings.Replace(version, ", version", "", 1), " (")
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := proc.Start(proc.Spec{
		Name: "prometheus",
		Path: o.prometheus,
		Args: []string{
			"--config.file=" + configPath,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
		},
		Dir:     dir,
		LogPath: filepath.Join(dir, "prometheus.log"),
	})
	if err != nil {
		return nil, err
	}
	pr := &prometheus{p: p, version: version, base: "http://" + addr, interval: o.interval, client: &http.Client{Timeout: 10 * time.Second}}
	log.Printf("prometheus (pid %d) on %s, scraping %v every %s, rules %s", p.PID, pr.base, targets, o.interval, o.rules)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := pr.client.Get(pr.base + "/-/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return pr, nil
			}
		}
		if p.Exited() {
			break
		}
		sleep(ctx, 200*time.Millisecond)
	}
	return nil, errors.Join(fmt.Errorf("prometheus not ready; end of its log:\n%s", proc.Tail(p.LogPath, 3000)), p.Stop(5*time.Second))
}

func (p *prometheus) stop() error { return p.p.Stop(10 * time.Second) }

type sample struct {
	t float64 // unix seconds
	v float64
}

type series struct {
	labels map[string]string
	points []sample
}

// query runs an instant query and returns its vector or matrix.
func (p *prometheus) query(ctx context.Context, q string, at time.Time) ([]series, error) {
	u := p.base + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixNano())/1e9, 'f', 3, 64)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
				Values [][]any           `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %w: %s", q, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	var out []series
	for _, res := range r.Data.Result {
		s := series{labels: res.Metric}
		pts := res.Values
		if res.Value != nil {
			pts = [][]any{res.Value}
		}
		for _, pt := range pts {
			if len(pt) != 2 {
				continue
			}
			t, _ := pt[0].(float64)
			vs, _ := pt[1].(string)
			v, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				return nil, fmt.Errorf("query %q: value %v", q, pt[1])
			}
			s.points = append(s.points, sample{t: t, v: v})
		}
		out = append(out, s)
	}
	return out, nil
}

// scalar is the value of a query that returns one series.
func (p *prometheus) scalar(ctx context.Context, q string) (float64, error) {
	ss, err := p.query(ctx, q, time.Now())
	if err != nil {
		return 0, err
	}
	if len(ss) != 1 || len(ss[0].points) != 1 {
		return 0, fmt.Errorf("query %q: %d series", q, len(ss))
	}
	return ss[0].points[0].v, nil
}

// firing reports whether the alert is firing now (ALERTS, as of the last
// evaluation).
func (p *prometheus) firing(ctx context.Context, alert string) bool {
	ss, err := p.query(ctx, fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing"}`, alert), time.Now())
	return err == nil && len(ss) > 0
}

// history is what Prometheus recorded over the run.
type history struct {
	// alerts: one entry per alert, state and label set, with the times of
	// the evaluations that found it in that state (ALERTS).
	alerts []series
	// leaders: sum by (lease) of is_leader, at every evaluation.
	leaders []series
}

func (p *prometheus) history(ctx context.Context, from, to time.Time) (history, error) {
	rng := fmt.Sprintf("%ds", int(math.Ceil(to.Sub(from).Seconds()))+1)
	var h history
	var err error
	if h.alerts, err = p.query(ctx, `ALERTS{alertname=~"LeaderReceiverCreator.*"}[`+rng+`]`, to); err != nil {
		return h, err
	}
	sort.Slice(h.alerts, func(i, j int) bool { return labelString(h.alerts[i].labels) < labelString(h.alerts[j].labels) })
	h.leaders, err = p.query(ctx, `sum by (lease) (otelcol_leader_election_is_leader)[`+rng+`:`+p.interval.String()+`]`, to)
	return h, err
}

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}
