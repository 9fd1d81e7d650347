// Package deploy holds the Kubernetes manifests of otelcol-leader. Its tests
// keep them consistent with each other and with distribution/config.yaml:
// the ConfigMap carries that configuration with an OTLP exporter in place of
// its file exporter (no data written under /tmp in a pod), the RBAC grants
// only what the component and its sub-receivers use, and the Helm values run
// the same pipeline as the ConfigMap.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const (
	namespace      = "otel-leader"
	serviceAccount = "otel-leader"
	configMapName  = "otelcol-leader-config"
	configKey      = "config.yaml"
	distConfigPath = "../distribution/config.yaml"
	healthPort     = 13133
	// otlpExporter is the one exporter of the deployed configuration; its
	// endpoint is a placeholder the user replaces.
	otlpExporter = "otlp_grpc"
	placeholder  = "otlp-gateway.example:4317"
)

// deployedConfig is the collector configuration the ConfigMap carries.
func deployedConfig(t *testing.T) map[string]any {
	t.Helper()
	var cm corev1.ConfigMap
	decode(t, "configmap.yaml", readFile(t, "configmap.yaml"), &cm)
	if cm.Name != configMapName || cm.Namespace != namespace {
		t.Errorf("ConfigMap is %s/%s, want %s/%s", cm.Namespace, cm.Name, namespace, configMapName)
	}
	var config map[string]any
	decode(t, "configmap.yaml data."+configKey, []byte(cm.Data[configKey]), &config)
	return config
}

// TestConfigMapIsTheDistributionConfigWithOTLP: the ConfigMap runs
// distribution/config.yaml (what make run and the end-to-end tests run) with
// its exporters replaced by one OTLP exporter whose endpoint is a clear
// placeholder: everything else is the same.
func TestConfigMapIsTheDistributionConfigWithOTLP(t *testing.T) {
	var dist map[string]any
	decode(t, distConfigPath, readFile(t, distConfigPath), &dist)
	deployed := deployedConfig(t)

	exporters, _ := deployed["exporters"].(map[string]any)
	if len(exporters) != 1 || exporters[otlpExporter] == nil {
		t.Errorf("configmap.yaml exporters = %v, want only %s", exporters, otlpExporter)
	}
	if endpoint := fmt.Sprint(dig(deployed, "exporters", otlpExporter, "endpoint")); !strings.Contains(endpoint, placeholder) {
		t.Errorf("configmap.yaml %s endpoint %q, want the placeholder %s", otlpExporter, endpoint, placeholder)
	}
	for _, signal := range []string{"metrics", "logs"} {
		if got := dig(deployed, "service", "pipelines", signal, "exporters"); !reflect.DeepEqual(got, []any{otlpExporter}) {
			t.Errorf("configmap.yaml pipeline %s exports to %v, want [%s]", signal, got, otlpExporter)
		}
	}

	// The rest is distribution/config.yaml's.
	withoutExporters := func(c map[string]any) map[string]any {
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var copied map[string]any
		if err := yaml.Unmarshal(out, &copied); err != nil {
			t.Fatal(err)
		}
		delete(copied, "exporters")
		for _, p := range dig(copied, "service", "pipelines").(map[string]any) {
			delete(p.(map[string]any), "exporters")
		}
		return copied
	}
	if got, want := withoutExporters(deployed), withoutExporters(dist); !reflect.DeepEqual(got, want) {
		t.Errorf("configmap.yaml differs from %s in more than its exporters:\n got %v\nwant %v", distConfigPath, got, want)
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(readFile(t, "kustomization.yaml"), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	slices.Sort(files)
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, files) {
		t.Errorf("kustomization resources = %v, want every manifest %v", got, files)
	}
}

func TestLeaseRoleGrantsOnlyWhatTheElectorNeeds(t *testing.T) {
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	docs := splitDocs(readFile(t, "rbac-lease.yaml"))
	if len(docs) != 2 {
		t.Fatalf("rbac-lease.yaml: %d documents, want Role and RoleBinding", len(docs))
	}
	decode(t, "rbac-lease.yaml", docs[0], &role)
	decode(t, "rbac-lease.yaml", docs[1], &binding)
	if role.Kind != "Role" || role.Namespace != namespace {
		t.Fatalf("first document is %s in %q, want a Role in %q", role.Kind, role.Namespace, namespace)
	}
	checkLeaseRules(t, role.Rules, leaseName(t))
	checkBinding(t, binding.Kind, binding.Subjects, binding.RoleRef, "Role", role.Name)
}

func checkLeaseRules(t *testing.T, rules []rbacv1.PolicyRule, lease string) {
	t.Helper()
	verbs := map[string]bool{}
	for _, r := range rules {
		if !slices.Equal(r.APIGroups, []string{"coordination.k8s.io"}) || !slices.Equal(r.Resources, []string{"leases"}) {
			t.Errorf("rule %+v: want only coordination.k8s.io leases", r)
		}
		if len(r.ResourceNames) > 0 && !slices.Contains(r.ResourceNames, lease) {
			t.Errorf("rule %+v: resourceNames lack the Lease %q", r, lease)
		}
		for _, v := range r.Verbs {
			switch v {
			case "get", "create", "update", "list", "watch":
				verbs[v] = true
			default:
				t.Errorf("rule %+v: verb %q; the elector needs only get, create, update, list, watch", r, v)
			}
			if v == "create" && len(r.ResourceNames) > 0 {
				t.Errorf("rule %+v: create cannot be restricted by resourceNames", r)
			}
			if v != "create" && !slices.Equal(r.ResourceNames, []string{lease}) {
				t.Errorf("rule %+v: %s must be restricted to the Lease %q", r, v, lease)
			}
		}
	}
	if len(verbs) != 5 {
		t.Errorf("lease verbs = %v, want get, create, update, list and watch", verbs)
	}
}

func TestClusterRoleIsReadOnly(t *testing.T) {
	role, binding := clusterRBAC(t)
	for _, r := range role.Rules {
		for _, v := range r.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("ClusterRole rule %+v: verb %q is not a read", r, v)
			}
		}
		if slices.Contains(r.APIGroups, "coordination.k8s.io") {
			t.Errorf("ClusterRole rule %+v: Leases belong to the namespaced Role", r)
		}
	}
	checkBinding(t, binding.Kind, binding.Subjects, binding.RoleRef, "ClusterRole", role.Name)
}

func clusterRBAC(t *testing.T) (rbacv1.ClusterRole, rbacv1.ClusterRoleBinding) {
	t.Helper()
	var role rbacv1.ClusterRole
	var binding rbacv1.ClusterRoleBinding
	docs := splitDocs(readFile(t, "rbac-cluster.yaml"))
	if len(docs) != 2 {
		t.Fatalf("rbac-cluster.yaml: %d documents, want ClusterRole and ClusterRoleBinding", len(docs))
	}
	decode(t, "rbac-cluster.yaml", docs[0], &role)
	decode(t, "rbac-cluster.yaml", docs[1], &binding)
	if role.Kind != "ClusterRole" {
		t.Fatalf("first document is a %s, want a ClusterRole", role.Kind)
	}
	return role, binding
}

func checkBinding(t *testing.T, kind string, subjects []rbacv1.Subject, ref rbacv1.RoleRef, refKind, refName string) {
	t.Helper()
	if ref.Kind != refKind || ref.Name != refName {
		t.Errorf("%s binds %s %q, want %s %q", kind, ref.Kind, ref.Name, refKind, refName)
	}
	want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: serviceAccount, Namespace: namespace}}
	if !reflect.DeepEqual(subjects, want) {
		t.Errorf("%s subjects = %+v, want %+v", kind, subjects, want)
	}
}

func TestDeployment(t *testing.T) {
	var d appsv1.Deployment
	decode(t, "deployment.yaml", readFile(t, "deployment.yaml"), &d)
	if d.Namespace != namespace {
		t.Errorf("namespace %q, want %q", d.Namespace, namespace)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != serviceAccount {
		t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, serviceAccount)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 30 {
		t.Errorf("terminationGracePeriodSeconds = %v: leave the leader time to stop its group and release the Lease", g)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "otelcol-leader:dev" {
		t.Errorf("image %q, want the placeholder otelcol-leader:dev (kustomization images: replaces it)", c.Image)
	}
	fieldRefs := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fieldRefs[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	for name, path := range map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"} {
		if fieldRefs[name] != path {
			t.Errorf("env %s from %q, want the downward API field %s", name, fieldRefs[name], path)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET on healthcheckv2", name)
			continue
		}
		port := probe.HTTPGet.Port.IntVal
		if probe.HTTPGet.Port.StrVal != "" {
			port = ports[probe.HTTPGet.Port.StrVal]
		}
		if port != healthPort || probe.HTTPGet.Path != "/" {
			t.Errorf("%s probe: GET %s on port %d, want / on %d", name, probe.HTTPGet.Path, port, healthPort)
		}
	}
	// The --config file is the ConfigMap's key, mounted from the ConfigMap.
	var configArg string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			configArg = v
		}
	}
	var mountDir string
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == configMapName {
				mountDir = m.MountPath
			}
		}
	}
	if mountDir == "" || configArg != mountDir+"/"+configKey {
		t.Errorf("--config=%s, but ConfigMap %s is mounted at %q", configArg, configMapName, mountDir)
	}
}

// TestHelmValuesRunTheSamePipeline compares the parts of the Helm chart's
// config that must not drift from the ConfigMap's.
func TestHelmValuesRunTheSamePipeline(t *testing.T) {
	deployed := deployedConfig(t)
	var values map[string]any
	decode(t, "helm/values.yaml", readFile(t, "helm/values.yaml"), &values)
	helm, _ := values["config"].(map[string]any)

	for _, path := range [][]string{
		{"receivers", "leader_receiver_creator"},
		{"processors", "batch"},
		{"exporters", otlpExporter},
		{"extensions", "healthcheckv2", "path"},
		{"service", "extensions"},
		{"service", "telemetry", "logs"},
		{"service", "pipelines", "metrics"},
		{"service", "pipelines", "logs"},
	} {
		want, got := dig(deployed, path...), dig(helm, path...)
		if want == nil || !reflect.DeepEqual(got, want) {
			t.Errorf("helm config.%s = %v, want %v as in configmap.yaml", strings.Join(path, "."), got, want)
		}
	}
	if v, ok := helm["service"].(map[string]any)["pipelines"].(map[string]any)["traces"]; !ok || v != nil {
		t.Errorf("helm config must remove the chart's default traces pipeline (traces: null)")
	}

	if values["mode"] != "deployment" || values["replicaCount"] != float64(2) {
		t.Errorf("mode=%v replicaCount=%v, want deployment and 2", values["mode"], values["replicaCount"])
	}
	role, _ := clusterRBAC(t)
	var chartRules []rbacv1.PolicyRule
	rules, _ := yaml.Marshal(dig(values, "clusterRole", "rules"))
	decode(t, "helm/values.yaml clusterRole.rules", rules, &chartRules)
	if !reflect.DeepEqual(chartRules, role.Rules) {
		t.Errorf("helm clusterRole.rules differ from rbac-cluster.yaml")
	}
	extra, _ := dig(values, "extraManifests").([]any)
	if len(extra) == 0 {
		t.Fatalf("helm extraManifests: want the Lease Role and RoleBinding")
	}
	var leaseRole rbacv1.Role
	manifest, _ := yaml.Marshal(extra[0])
	decode(t, "helm/values.yaml extraManifests[0]", manifest, &leaseRole)
	if leaseRole.Kind != "Role" {
		t.Fatalf("helm extraManifests[0] is a %s, want the Lease Role", leaseRole.Kind)
	}
	checkLeaseRules(t, leaseRole.Rules, leaseName(t))
}

func leaseName(t *testing.T) string {
	t.Helper()
	var dist map[string]any
	decode(t, distConfigPath, readFile(t, distConfigPath), &dist)
	name, _ := dig(dist, "receivers", "leader_receiver_creator", "leader_election", "lease_name").(string)
	if name == "" {
		t.Fatalf("%s has no leader_election.lease_name", distConfigPath)
	}
	return name
}

func dig(m any, path ...string) any {
	for _, k := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, name string, data []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}
