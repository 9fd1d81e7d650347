package scenarios

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
)

// TestDeployManifestsGrantExactlyTheLease: everything kustomization.yaml
// lists in deploy/ applies to a real API server (twice: re-applying is
// clean too), and the ServiceAccount may get, create and update its Lease,
// read what the sub-receivers read, and nothing else.
func TestDeployManifestsGrantExactlyTheLease(t *testing.T) {
	cp := controlPlane(t)
	cs := cp.Clientset()
	ctx := t.Context()
	files, err := cluster.DeployFiles(deployDir)
	require.NoError(t, err)
	require.NoError(t, cluster.ApplyFiles(ctx, cp.RESTConfig(), files...))
	require.NoError(t, cluster.ApplyFiles(ctx, cp.RESTConfig(), files...))
	ns, sa, lease := cluster.Namespace, cluster.ServiceAccount, cluster.LeaseName
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, "otelcol-leader", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, sa, dep.Spec.Template.Spec.ServiceAccountName)

	can := func(verb, group, resource, name, resourceNS string) bool {
		ok, err := cluster.Can(ctx, cs, ns, sa, verb, group, resource, name, resourceNS)
		require.NoError(t, err)
		return ok
	}
	require.Eventually(t, func() bool { return can("update", "coordination.k8s.io", "leases", lease, ns) },
		20*time.Second, 100*time.Millisecond, "the authorizer sees the new bindings")

	const coord = "coordination.k8s.io"
	for _, c := range []struct {
		verb, group, resource, name, ns string
		want                            bool
	}{
		{"get", coord, "leases", lease, ns, true},
		{"update", coord, "leases", lease, ns, true},
		{"create", coord, "leases", "", ns, true},
		{"get", coord, "leases", "other", ns, false},
		{"update", coord, "leases", "other", ns, false},
		{"list", coord, "leases", lease, ns, true},
		{"watch", coord, "leases", lease, ns, true},
		{"list", coord, "leases", "", ns, false},
		{"watch", coord, "leases", "", ns, false},
		{"list", coord, "leases", "other", ns, false},
		{"watch", coord, "leases", "other", ns, false},
		{"patch", coord, "leases", lease, ns, false},
		{"delete", coord, "leases", lease, ns, false},
		{"deletecollection", coord, "leases", "", ns, false},
		{"get", coord, "leases", lease, "default", false},
		{"create", coord, "leases", "", "default", false},
		{"update", coord, "leases", lease, "kube-system", false},
		{"get", "", "secrets", "", ns, false},
		{"list", "", "secrets", "", "", false},
		{"get", "", "configmaps", "otelcol-leader-config", ns, false},
		{"create", "", "events", "", ns, false},
		{"create", "", "pods", "", ns, false},
		{"update", "apps", "deployments", "otelcol-leader", ns, false},
	} {
		assert.Equal(t, c.want, can(c.verb, c.group, c.resource, c.name, c.ns), "%s %s/%s %q in %q", c.verb, c.group, c.resource, c.name, c.ns)
	}

	// The ClusterRole bound to the ServiceAccount: every read it lists is
	// allowed cluster-wide, and no write on the same resources.
	for _, rule := range clusterRules(t, cs, ns, sa) {
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				for _, verb := range []string{"get", "list", "watch"} {
					assert.True(t, can(verb, group, resource, "", ""), "%s %s/%s", verb, group, resource)
				}
				for _, verb := range []string{"create", "update", "patch", "delete"} {
					assert.False(t, can(verb, group, resource, "", ""), "%s %s/%s", verb, group, resource)
				}
			}
		}
	}

	// What the ServiceAccount itself is told it may do in its namespace: the
	// only writes are on the Lease (and the self-reviews every user has).
	kubeconfig, err := cp.ServiceAccountKubeconfig(ctx, ns, sa, "")
	require.NoError(t, err)
	cfg, _, err := cluster.FromKubeconfig(ctx, kubeconfig, 10*time.Second)
	require.NoError(t, err)
	review, err := kubernetes.NewForConfigOrDie(cfg).AuthorizationV1().SelfSubjectRulesReviews().Create(ctx,
		&authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.False(t, review.Status.Incomplete, review.Status.EvaluationError)
	leaseVerbs := map[string][]string{} // verb -> resourceNames
	for _, r := range review.Status.ResourceRules {
		isLease := slices.Equal(r.APIGroups, []string{coord}) && slices.Equal(r.Resources, []string{"leases"})
		for _, verb := range r.Verbs {
			switch {
			case isLease:
				leaseVerbs[verb] = append(leaseVerbs[verb], r.ResourceNames...)
			case verb == "get" || verb == "list" || verb == "watch":
			case verb == "create" && selfReview(r):
			default:
				t.Errorf("the ServiceAccount may %s %v/%v %v", verb, r.APIGroups, r.Resources, r.ResourceNames)
			}
		}
	}
	assert.Equal(t, map[string][]string{"create": nil, "get": {lease}, "update": {lease}, "list": {lease}, "watch": {lease}}, leaseVerbs,
		"leases: create, and get, update, list and watch of %s only", lease)
}

// clusterRules are the rules of the ClusterRoles bound to ServiceAccount ns/sa.
func clusterRules(t *testing.T, cs kubernetes.Interface, ns, sa string) []rbacv1.PolicyRule {
	bindings, err := cs.RbacV1().ClusterRoleBindings().List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	var rules []rbacv1.PolicyRule
	for _, b := range bindings.Items {
		if !slices.Contains(b.Subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}) {
			continue
		}
		role, err := cs.RbacV1().ClusterRoles().Get(t.Context(), b.RoleRef.Name, metav1.GetOptions{})
		require.NoError(t, err)
		rules = append(rules, role.Rules...)
	}
	require.NotEmpty(t, rules, "a ClusterRole is bound to %s/%s", ns, sa)
	return rules
}

// selfReview is a rule every authenticated user has (system:basic-user):
// create SelfSubjectAccessReviews and the like.
func selfReview(r authorizationv1.ResourceRule) bool {
	for _, res := range r.Resources {
		if !strings.HasPrefix(res, "selfsubject") {
			return false
		}
	}
	return true
}
