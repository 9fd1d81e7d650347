package pins

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// A block is a part of a doc generated from the manifest, between
//
//	<!-- pins:begin NAME -->
//	<!-- pins:end -->
//
// Edit its template here, not the doc: Check reports a block that differs.
type block struct {
	file, name, text string
}

var blocks = []block{
	{file: "README.md", name: "status", text: `| Status    |                                          |
| --------- | ---------------------------------------- |
| Stability | alpha: metrics, logs, traces, profiles   |
| Type      | ` + "`leader_receiver_creator`" + ` (receiver)     |
| Module    | ` + "`github.com/leaderreceivercreator/leaderreceivercreator`" + ` {{pin "module"}} ([versions](#versions), [CHANGELOG](CHANGELOG.md)) |
| Collector | {{pin "core"}} / {{pin "stable"}} or later (the minimum in go.mod); tested up to {{pin "newest_core"}} / {{pin "newest_stable"}} |
| client-go | {{pin "client_go"}} or later (the minimum in go.mod); tested up to {{pin "newest_client_go"}} |
| Kubernetes | e2e on {{pin "kubernetes"}} (` + "`make test`" + `); {{pin "kubernetes_oldest"}} on demand (` + "`KUBE_VERSION=`" + `; [runs](docs/compatibility.md#kubernetes-versions)) |
| Go        | 1.25 or later (` + "`" + `go 1.25.0` + "`" + ` in go.mod: ` + "`" + `sync.WaitGroup.Go` + "`" + `, ` + "`" + `testing/synctest` + "`" + `; checked with ` + "`" + `GOTOOLCHAIN=go1.25.5 go vet ./...` + "`" + `); the collector line {{pin "newest_core"}} itself needs Go 1.26 |
`},
	{file: "README.md", name: "versions", text: `| Module version | Minimum collector (go.mod) | Newest collector tested | client-go | Our distribution |
| --- | --- | --- | --- | --- |
| {{pin "module"}} | {{pin "core"}} / {{pin "stable"}} | {{pin "newest_core"}} / {{pin "newest_stable"}} | {{pin "client_go"}} … {{pin "newest_client_go"}} | contrib {{pin "contrib"}}{{range overrides}}, {{.}}{{end}} |
`},
	{file: "README.md", name: "distribution", text: `| Modules | Version | Why |
| --- | --- | --- |
| core (` + "`" + `otlp` + "`" + ` receiver, ` + "`" + `otlp_grpc` + "`" + ` and ` + "`" + `debug` + "`" + ` exporters, ` + "`" + `batch` + "`" + `) | {{pin "core"}} / {{pin "stable"}} | the line; this module's minimum |
| ` + "`" + `k8s_cluster` + "`" + `, ` + "`" + `k8s_events` + "`" + `, ` + "`" + `k8s_objects` + "`" + `, ` + "`" + `http_check` + "`" + `, ` + "`" + `prometheus` + "`" + `, ` + "`" + `file` + "`" + ` exporter, ` + "`" + `pprof` + "`" + `, ` + "`" + `file_storage` + "`" + ` | {{pin "contrib"}} | the line (` + "`" + `k8s_events` + "`" + ` and ` + "`" + `k8s_objects` + "`" + ` have ` + "`" + `storage` + "`" + `) |
| ` + "`" + `receiver_creator` + "`" + `, ` + "`" + `k8s_observer` + "`" + ` | {{pin "contrib/receiver/receivercreator"}} | newest served before v0.156, which needs a newer core and unserved modules |
| ` + "`" + `healthcheckv2` + "`" + ` | {{pin "contrib/extension/healthcheckv2extension"}} | newest served before v0.155 (needs core v0.155) |
| bench peer: ` + "`" + `k8s_leader_elector` + "`" + ` | {{pin "contrib"}} | the line |
`},
	{file: "docs/compatibility.md", name: "distribution-why", text: `| Module | Pinned | Why |
| --- | --- | --- |
| core (` + "`" + `otelcol` + "`" + `, ` + "`" + `otlp` + "`" + ` receiver, ` + "`" + `otlp_grpc` + "`" + ` exporter, ` + "`" + `debug` + "`" + `, ` + "`" + `batch` + "`" + `; confmap providers) | {{pin "core"}} / {{pin "stable"}} | the line; our module's minimum (` + "`" + `confmap.Validate` + "`" + `, confmap v1.58.0) |
| ` + "`" + `k8s_cluster` + "`" + `, ` + "`" + `k8s_events` + "`" + `, ` + "`" + `k8s_objects` + "`" + `, ` + "`" + `http_check` + "`" + `, ` + "`" + `prometheus` + "`" + `, ` + "`" + `file` + "`" + ` exporter, ` + "`" + `pprof` + "`" + `, ` + "`" + `file_storage` + "`" + ` | {{pin "contrib"}} | the line; ` + "`" + `k8s_events` + "`" + ` and ` + "`" + `k8s_objects` + "`" + ` with ` + "`" + `storage` + "`" + ` (resume from a stored resourceVersion), ` + "`" + `file_storage` + "`" + ` to serve it (not used by the shipped configs yet) |
| ` + "`" + `receiver_creator` + "`" + `, ` + "`" + `k8s_observer` + "`" + ` | {{pin "contrib/receiver/receivercreator"}} | no v0.149–v0.155 served; v0.156 and v0.161 need core v0.156+ and ` + "`" + `internal/k8sconfig` + "`" + ` v0.156, not served. Go's version selection lifts their shared contrib and core dependencies to v0.152 (builds, and green below) |
| ` + "`" + `healthcheckv2` + "`" + ` | {{pin "contrib/extension/healthcheckv2extension"}} | no v0.152.0 served; the next served, v0.155, needs core v0.155 |
| bench peer ([e2e/peer](../e2e/peer/builder-config.yaml)): ` + "`" + `k8s_leader_elector` + "`" + ` | {{pin "contrib"}} | the line (its log lines, which the bench parses, are unchanged) |
`},
}

const (
	beginMarker = "<!-- pins:begin %s -->"
	endMarker   = "<!-- pins:end -->"
)

func (b block) render(m *Manifest) (string, error) {
	var missing []string
	funcs := template.FuncMap{
		"pin": func(key string) string {
			v := m.Get(key)
			if v == "" {
				missing = append(missing, key)
			}
			return v
		},
		// overrides lists the contrib modules pinned apart, as "name version".
		"overrides": func() []string {
			var out []string
			for _, line := range m.lines {
				kv := manifestLine.FindStringSubmatch(line)
				if kv != nil && strings.HasPrefix(kv[1], "contrib/") {
					out = append(out, filepath.Base(kv[1])+" "+kv[2])
				}
			}
			return out
		},
	}
	t, err := template.New(b.name).Funcs(funcs).Parse(b.text)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, nil); err != nil {
		return "", err
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%s block %s: the manifest has no %s", b.file, b.name, strings.Join(missing, ", "))
	}
	return buf.String(), nil
}

// locate returns the block's current text in doc and its byte offsets.
func (b block) locate(doc string) (start, end int, err error) {
	begin := fmt.Sprintf(beginMarker, b.name)
	i := strings.Index(doc, begin)
	if i < 0 {
		return 0, 0, fmt.Errorf("%s: no %q", b.file, begin)
	}
	start = i + len(begin) + 1 // after the marker's line
	j := strings.Index(doc[start-1:], endMarker)
	if j < 0 {
		return 0, 0, fmt.Errorf("%s: block %s has no %q", b.file, b.name, endMarker)
	}
	return start, start - 1 + j, nil
}

// read reads b's doc: the doc, the block's offsets in it, and what the
// manifest renders there.
func (b block) read(root string, m *Manifest) (doc string, start, end int, want string, err error) {
	data, err := os.ReadFile(filepath.Join(root, b.file))
	if err != nil {
		return "", 0, 0, "", err
	}
	doc = string(data)
	if start, end, err = b.locate(doc); err != nil {
		return "", 0, 0, "", err
	}
	want, err = b.render(m)
	return doc, start, end, want, err
}

func staleBlocks(root string, m *Manifest) ([]string, error) {
	var stale []string
	for _, b := range blocks {
		doc, start, end, want, err := b.read(root, m)
		if err != nil {
			return nil, err
		}
		if doc[start:end] != want {
			stale = append(stale, fmt.Sprintf("%s: block %s differs from the manifest (make bump-collector rewrites it)", b.file, b.name))
		}
	}
	return stale, nil
}

func writeBlocks(root string, m *Manifest) ([]string, error) {
	var changed []string
	for _, b := range blocks {
		doc, start, end, want, err := b.read(root, m)
		if err != nil {
			return changed, err
		}
		if doc[start:end] == want {
			continue
		}
		out := doc[:start] + want + doc[end:]
		if err := os.WriteFile(filepath.Join(root, b.file), []byte(out), 0o644); err != nil { //nolint:gosec // a doc
			return changed, err
		}
		changed = append(changed, b.file+" ("+b.name+")")
	}
	return changed, nil
}
