package compat

import (
	"fmt"
	"slices"
	"strings"
)

// The block's timings in the matrix. Terms are ended from outside, so
// lease_duration does not pace them; it is generous so that a group on a
// loaded machine (nine collectors and a control plane on two cores) has
// lease_duration - renew_deadline = 3s to stop.
const (
	leaseDuration = "8s"
	renewDeadline = "5s"
	retryPeriod   = "500ms"
)

// The environment the configurations read, besides what package fleet sets
// (POD_NAME, POD_NAMESPACE, KUBECONFIG, OUTPUT_DIR, HEALTHCHECK_ENDPOINT,
// TELEMETRY_METRICS_HOST/PORT).
const (
	envID               = "COMPAT_ID"                // the row: paths on the test's target server
	envPprof            = "COMPAT_PPROF_ENDPOINT"    // pprof extension, per replica
	envTokenFile        = "COMPAT_TOKEN_FILE"        // the replica's ServiceAccount token (a pod's is mounted)
	envCAFile           = "COMPAT_CA_FILE"           // the API server's CA
	envAPIServer        = "COMPAT_APISERVER"         // host:port
	envAPIServerURL     = "COMPAT_APISERVER_URL"     // https://host:port
	envTarget           = "COMPAT_TARGET"            // host:port of the test's kube-state-metrics-style target
	envTargetsNamespace = "COMPAT_TARGETS_NAMESPACE" // Pods and a Service for k8s_objects and k8s_observer
)

// observerContext is the kubeconfig context k8s_observer uses: a
// ServiceAccount of its own, so that the audit log tells its requests (it is
// an extension: it runs on every replica, leader or not) from the group's.
const observerContext = "observer"

// receiverCase is one receiver of the matrix.
type receiverCase struct {
	name string
	yaml string // its configuration as a member of the group
	// observer: needs the k8s_observer extension.
	observer bool
}

// receivers is the matrix: each receiver's configuration as a member of the
// group (indented for leader_receiver_creator::receivers), in row order.
var receivers = []receiverCase{
	{name: "k8s_cluster", yaml: `
      k8s_cluster:
        auth_type: kubeConfig
        collection_interval: 2s`},
	{name: "k8s_events", yaml: `
      k8s_events:
        auth_type: kubeConfig
        namespaces:
          - ${env:POD_NAMESPACE}`},
	// The API server's /metrics with the ServiceAccount token (RBAC:
	// nonResourceURLs /metrics, get), a few of its metrics kept; and a
	// kube-state-metrics-style static target served by the test.
	{name: "prometheus", yaml: `
      prometheus:
        config:
          scrape_configs:
            - job_name: kube-apiserver
              scrape_interval: 2s
              scrape_timeout: 2s
              scheme: https
              authorization:
                credentials_file: ${env:COMPAT_TOKEN_FILE}
              tls_config:
                ca_file: ${env:COMPAT_CA_FILE}
              static_configs:
                - targets:
                    - ${env:COMPAT_APISERVER}
              metric_relabel_configs:
                - source_labels: [__name__]
                  regex: apiserver_request_total|apiserver_current_inflight_requests|process_resident_memory_bytes
                  action: keep
            - job_name: kube-state-metrics
              scrape_interval: 1s
              scrape_timeout: 1s
              metrics_path: /ksm/${env:COMPAT_ID}/metrics
              static_configs:
                - targets:
                    - ${env:COMPAT_TARGET}`},
	// Pull mode (Pods) and watch mode (Events).
	{name: "k8s_objects", yaml: `
      k8s_objects:
        auth_type: kubeConfig
        objects:
          - name: pods
            mode: pull
            interval: 2s
            namespaces:
              - ${env:COMPAT_TARGETS_NAMESPACE}
          - name: events
            mode: watch
            namespaces:
              - ${env:POD_NAMESPACE}`},
	// http_check has no Shutdown: a term's HTTP clients keep their idle
	// keep-alive connections (two goroutines each) until idle_conn_timeout,
	// 90s by default (docs/compatibility.md). Shorter than a term here.
	{name: "http_check", yaml: `
      http_check:
        collection_interval: 1s
        targets:
          - endpoint: ${env:COMPAT_APISERVER_URL}/readyz
            idle_conn_timeout: 2s
            tls:
              ca_file: ${env:COMPAT_CA_FILE}`},
	// A sub-receiver per discovered Pod port named "metrics" (the test's
	// target server: they connect) and per Service (a cluster DNS name that
	// does not resolve here: they fail, and are created and torn down all
	// the same).
	{name: "receiver_creator", observer: true, yaml: `
      receiver_creator:
        watch_observers: [k8s_observer]
        receivers:
          http_check/pods:
            rule: type == "port" && name == "metrics"
            config:
              collection_interval: 1s
              targets:
                - endpoint: http://` + "`endpoint`" + `/rc/${env:COMPAT_ID}
                  idle_conn_timeout: 2s
          http_check/services:
            rule: type == "k8s.service"
            config:
              collection_interval: 1s
              targets:
                - endpoint: http://` + "`endpoint`" + `:80/
                  timeout: 500ms
                  idle_conn_timeout: 2s`},
}

// receiverNames are the rows' receivers, in order.
func receiverNames() []string {
	out := make([]string, len(receivers))
	for i, r := range receivers {
		out[i] = r.name
	}
	return out
}

// collectorConfig is the configuration of a collector whose group holds
// members (names of receivers).
func collectorConfig(members []string) (string, error) {
	var b strings.Builder
	observer := false
	for _, name := range members {
		i := slices.IndexFunc(receivers, func(r receiverCase) bool { return r.name == name })
		if i < 0 {
			return "", fmt.Errorf("no receiver %q in the matrix", name)
		}
		b.WriteString(receivers[i].yaml)
		observer = observer || receivers[i].observer
	}
	extensions := "[pprof]"
	observerExt := ""
	if observer {
		extensions = "[pprof, k8s_observer]"
		observerExt = `
  k8s_observer:
    auth_type: kubeConfig
    context: ` + observerContext + `
    observe_pods: true
    observe_services: true
    namespaces:
      - ${env:COMPAT_TARGETS_NAMESPACE}`
	}
	signals := ""
	if slices.Contains(members, "k8s_cluster") {
		signals = `
    signals:
      k8s_cluster: [metrics]`
	}
	return fmt.Sprintf(`
# One listening port per collector, pprof's: nine collectors start at once,
# and every port picked free in advance may be taken before it is bound.
extensions:
  pprof:
    endpoint: ${env:COMPAT_PPROF_ENDPOINT}%s

receivers:
  leader_receiver_creator:
    auth_type: kubeConfig
    leader_election:
      lease_name: otel-cluster-receivers
      lease_duration: %s
      renew_deadline: %s
      retry_period: %s
    receivers:%s%s

exporters:
  file:
    path: ${env:OUTPUT_DIR}/otelcol-leader-${env:POD_NAME}.jsonl
    flush_interval: 1s

service:
  extensions: %s
  telemetry:
    logs:
      level: info
      encoding: json
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [leader_receiver_creator]
      exporters: [file]
    logs:
      receivers: [leader_receiver_creator]
      exporters: [file]
`, observerExt, leaseDuration, renewDeadline, retryPeriod, b.String(), signals, extensions), nil
}
