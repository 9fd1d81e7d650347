package deploy

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// The alert rules (deploy/alerts/) in their three forms. promtool tests the
// rules file itself (make alerts-test); these tests keep the other two
// forms equal to it and every rule tied to what it reads and points to.
const (
	rulesFile      = "alerts/leader-receiver-creator.rules.yaml"
	rulesTestFile  = "alerts/rules.test.yaml"
	promRuleFile   = "alerts/prometheusrule.yaml"
	podMonitorFile = "alerts/podmonitor.yaml"
	alertsKustFile = "alerts/kustomization.yaml"
	helmAlertsFile = "helm/alerts-values.yaml"
	readmePath     = "../README.md"
	metadataPath   = "../metadata.yaml"
	// runbookBase is where every alert's runbook_url points: the README's
	// heading named after the alert.
	runbookBase = "https://github.com/leaderreceivercreator/leaderreceivercreator/blob/main/README.md#"
)

type ruleGroup struct {
	Name  string `json:"name"`
	Rules []rule `json:"rules"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// alertGroups reads the rule groups of the plain rules file.
func alertGroups(t *testing.T) []ruleGroup {
	t.Helper()
	var f struct {
		Groups []ruleGroup `json:"groups"`
	}
	decode(t, rulesFile, readFile(t, rulesFile), &f)
	if len(f.Groups) == 0 {
		t.Fatalf("%s has no groups", rulesFile)
	}
	return f.Groups
}

func alertRules(t *testing.T) []rule {
	t.Helper()
	var rules []rule
	for _, g := range alertGroups(t) {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// TestAlertRulesAgree: the PrometheusRule and the Helm values carry the
// rules file's groups, unchanged.
func TestAlertRulesAgree(t *testing.T) {
	want := alertGroups(t)

	var pr struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Groups []ruleGroup `json:"groups"`
		} `json:"spec"`
	}
	decode(t, promRuleFile, readFile(t, promRuleFile), &pr)
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Errorf("%s is %s %s, want monitoring.coreos.com/v1 PrometheusRule", promRuleFile, pr.APIVersion, pr.Kind)
	}
	if pr.Metadata.Namespace != namespace {
		t.Errorf("%s: namespace %q, want %q", promRuleFile, pr.Metadata.Namespace, namespace)
	}
	if !reflect.DeepEqual(pr.Spec.Groups, want) {
		t.Errorf("%s spec.groups differ from %s: copy its groups", promRuleFile, rulesFile)
	}

	var values map[string]any
	decode(t, helmAlertsFile, readFile(t, helmAlertsFile), &values)
	if dig(values, "prometheusRule", "enabled") != true {
		t.Errorf("%s: prometheusRule.enabled is not true", helmAlertsFile)
	}
	raw, err := yaml.Marshal(dig(values, "prometheusRule", "groups"))
	if err != nil {
		t.Fatal(err)
	}
	var helmGroups []ruleGroup
	decode(t, helmAlertsFile+" prometheusRule.groups", raw, &helmGroups)
	if !reflect.DeepEqual(helmGroups, want) {
		t.Errorf("%s prometheusRule.groups differ from %s: copy its groups", helmAlertsFile, rulesFile)
	}

	// The chart's PodMonitor scrapes the port that values.yaml opens.
	if dig(values, "podMonitor", "enabled") != true {
		t.Errorf("%s: podMonitor.enabled is not true: nothing would scrape the replicas", helmAlertsFile)
	}
	endpoints, _ := dig(values, "podMonitor", "metricsEndpoints").([]any)
	if len(endpoints) != 1 || dig(endpoints[0], "port") != "metrics" {
		t.Errorf("%s: podMonitor.metricsEndpoints = %v, want the one port metrics", helmAlertsFile, endpoints)
	}
	var base map[string]any
	decode(t, "helm/values.yaml", readFile(t, "helm/values.yaml"), &base)
	if dig(base, "ports", "metrics", "enabled") != true {
		t.Errorf("helm/values.yaml: ports.metrics.enabled is not true: the PodMonitor would find no port")
	}
}

// TestPodMonitorScrapesTheDeployment: the PodMonitor of deploy/alerts/
// selects deployment.yaml's pods, in its namespace, on the port its
// collector serves its telemetry on; the kustomization applies it and the
// PrometheusRule.
func TestPodMonitorScrapesTheDeployment(t *testing.T) {
	var pm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			PodMetricsEndpoints []struct {
				Port     string `json:"port"`
				Interval string `json:"interval"`
			} `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	decode(t, podMonitorFile, readFile(t, podMonitorFile), &pm)
	if pm.APIVersion != "monitoring.coreos.com/v1" || pm.Kind != "PodMonitor" {
		t.Errorf("%s is %s %s, want monitoring.coreos.com/v1 PodMonitor", podMonitorFile, pm.APIVersion, pm.Kind)
	}
	var dep appsv1.Deployment
	decode(t, "deployment.yaml", readFile(t, "deployment.yaml"), &dep)
	if pm.Metadata.Namespace != dep.Namespace {
		t.Errorf("%s: namespace %q, want the Deployment's %q", podMonitorFile, pm.Metadata.Namespace, dep.Namespace)
	}
	if len(pm.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("%s selects every pod", podMonitorFile)
	}
	for k, v := range pm.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("%s selects %s=%s; the Deployment's pods have %s=%q", podMonitorFile, k, v, k, dep.Spec.Template.Labels[k])
		}
	}
	var ports []string
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.ContainerPort == 8888 {
				ports = append(ports, p.Name)
			}
		}
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 || !slices.Contains(ports, pm.Spec.PodMetricsEndpoints[0].Port) {
		t.Errorf("%s scrapes %+v, want the Deployment's telemetry port (8888, named %v)", podMonitorFile, pm.Spec.PodMetricsEndpoints, ports)
	}

	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(readFile(t, alertsKustFile), &k); err != nil {
		t.Fatalf("%s: %v", alertsKustFile, err)
	}
	if want := []string{"podmonitor.yaml", "prometheusrule.yaml"}; !slices.Equal(slices.Sorted(slices.Values(k.Resources)), want) {
		t.Errorf("%s resources = %v, want %v", alertsKustFile, k.Resources, want)
	}
}

// TestAlertRulesAreDocumented: every alert has a severity, a summary, a
// description and a runbook_url that points to a heading of the README
// named after it.
func TestAlertRulesAreDocumented(t *testing.T) {
	anchors := readmeAnchors(t)
	for _, r := range alertRules(t) {
		if r.Alert == "" {
			t.Errorf("rule %q is not an alert", r.Expr)
			continue
		}
		if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
			t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s has no %s", r.Alert, a)
			}
		}
		if want := runbookBase + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		if !anchors[strings.ToLower(r.Alert)] {
			t.Errorf("%s: README.md has no heading %s (its runbook)", r.Alert, r.Alert)
		}
	}
}

// readmeAnchors are the GitHub anchors of the README's headings.
func readmeAnchors(t *testing.T) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for line := range strings.Lines(string(readFile(t, readmePath))) {
		title, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "#")
		if !ok {
			continue
		}
		title = strings.TrimSpace(strings.TrimLeft(title, "#"))
		anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(title), ""), " ", "-")] = true
	}
	return anchors
}

// TestAlertRulesReadExportedMetrics: every metric an alert reads is one the
// component exports (metadata.yaml, under its Prometheus name
// otelcol_<name>) or the collector's own otelcol_process_uptime, so that a
// renamed metric cannot leave an alert that never fires.
func TestAlertRulesReadExportedMetrics(t *testing.T) {
	var md struct {
		Telemetry struct {
			Metrics map[string]any `json:"metrics"`
		} `json:"telemetry"`
	}
	if err := yaml.Unmarshal(readFile(t, metadataPath), &md); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"otelcol_process_uptime": true}
	for name := range md.Telemetry.Metrics {
		known["otelcol_"+name] = true
	}
	metric := regexp.MustCompile(`\botelcol_[a-z_]+`)
	for _, r := range alertRules(t) {
		names := metric.FindAllString(r.Expr, -1)
		if len(names) == 0 {
			t.Errorf("%s reads no otelcol_ metric: %s", r.Alert, r.Expr)
		}
		for _, n := range names {
			if !known[n] {
				t.Errorf("%s reads %s, which the collector does not export", r.Alert, n)
			}
		}
	}
}

// TestEveryAlertIsTestedBothWays: rules.test.yaml has, for every alert, an
// evaluation where it fires and one where it stays silent.
func TestEveryAlertIsTestedBothWays(t *testing.T) {
	var f struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(readFile(t, rulesTestFile), &f); err != nil {
		t.Fatalf("%s: %v", rulesTestFile, err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tg := range f.Tests {
		for _, c := range tg.AlertRuleTest {
			if len(c.ExpAlerts) > 0 {
				fires[c.Alertname] = true
			} else {
				silent[c.Alertname] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		if !fires[r.Alert] {
			t.Errorf("%s: no test in %s where it fires", r.Alert, rulesTestFile)
		}
		if !silent[r.Alert] {
			t.Errorf("%s: no test in %s where it stays silent", r.Alert, rulesTestFile)
		}
	}
}
