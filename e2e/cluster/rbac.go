package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
)

// The names deploy/ uses: the collectors run as ServiceAccount
// otel-leader/otel-leader and lead through Lease otel-leader/otel-cluster-receivers.
const (
	Namespace      = "otel-leader"
	ServiceAccount = "otel-leader"
	LeaseName      = "otel-cluster-receivers"
)

// DeployRBACFiles are the manifests of deploy/ that make up the collectors'
// identity and permissions, in apply order.
var DeployRBACFiles = []string{"namespace.yaml", "serviceaccount.yaml", "rbac-lease.yaml", "rbac-cluster.yaml"}

// ApplyDeployRBAC applies DeployRBACFiles from deployDir. It reports false
// (and does nothing) if any of them is missing.
func ApplyDeployRBAC(ctx context.Context, cs kubernetes.Interface, deployDir string) (bool, error) {
	var paths []string
	for _, f := range DeployRBACFiles {
		p := filepath.Join(deployDir, f)
		if _, err := os.Stat(p); err != nil {
			return false, nil
		}
		paths = append(paths, p)
	}
	return true, ApplyFiles(ctx, cs, paths...)
}

// ApplyDeployRBACIn applies DeployRBACFiles from deployDir moved to
// namespace ns, so that several tests can each have the collectors'
// permissions exactly as deploy/ grants them, in a namespace of their own:
// Namespace ns, and the ServiceAccount, Role and RoleBinding in it; the
// ClusterRole as it is, and its ClusterRoleBinding, named <name>-<ns>, for
// the ServiceAccount of ns.
//
// With serviceAccounts, deploy/'s ServiceAccount becomes one ServiceAccount
// of each of these names, and every binding binds each of them instead: the
// same permissions, but each replica its own identity, so that its requests
// can be told apart (in the audit log).
func ApplyDeployRBACIn(ctx context.Context, cs kubernetes.Interface, deployDir, ns string, serviceAccounts ...string) error {
	paths := make([]string, len(DeployRBACFiles))
	for i, f := range DeployRBACFiles {
		paths[i] = filepath.Join(deployDir, f)
	}
	subjects := func(ss []rbacv1.Subject) []rbacv1.Subject {
		var out []rbacv1.Subject
		for _, s := range ss {
			if s.Kind != rbacv1.ServiceAccountKind {
				out = append(out, s)
				continue
			}
			s.Namespace = ns
			if len(serviceAccounts) == 0 {
				out = append(out, s)
			}
			for _, sa := range serviceAccounts {
				s.Name = sa
				out = append(out, s)
			}
		}
		return out
	}
	return applyFiles(ctx, cs, func(obj runtime.Object) []runtime.Object {
		switch o := obj.(type) {
		case *corev1.Namespace:
			o.Name = ns
		case *corev1.ServiceAccount:
			o.Namespace = ns
			if len(serviceAccounts) > 0 {
				var out []runtime.Object
				for _, sa := range serviceAccounts {
					c := o.DeepCopy()
					c.Name = sa
					out = append(out, c)
				}
				return out
			}
		case *rbacv1.ClusterRole:
		case *rbacv1.ClusterRoleBinding:
			o.Name += "-" + ns
			o.Subjects = subjects(o.Subjects)
		case *rbacv1.RoleBinding:
			o.Namespace = ns
			o.Subjects = subjects(o.Subjects)
		case metav1.Object:
			o.SetNamespace(ns)
		}
		return []runtime.Object{obj}
	}, paths...)
}

// ServiceAccountUser is the user name the API server gives ServiceAccount
// ns/sa: in SubjectAccessReviews, and in its audit log.
func ServiceAccountUser(ns, sa string) string {
	return "system:serviceaccount:" + ns + ":" + sa
}

// Can asks the API server (SubjectAccessReview) whether ServiceAccount ns/sa
// may do verb on resource (group/resource[/subresource]) called name (""
// for any) in namespace resourceNS ("" for cluster-wide).
func Can(ctx context.Context, cs kubernetes.Interface, ns, sa, verb, group, resource, name, resourceNS string) (bool, error) {
	res, sub, _ := strings.Cut(resource, "/")
	r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			// What the API server makes of the ServiceAccount's token.
			User:   ServiceAccountUser(ns, sa),
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: resourceNS, Verb: verb, Group: group, Resource: res, Subresource: sub, Name: name,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

// EnsureCollectorRBAC creates the same identity and permissions as deploy/
// in code: Namespace ns, ServiceAccount ns/sa, a Role to create the Lease and
// get/update Lease leaseName, and a ClusterRole with the read access of
// k8s_cluster and k8s_events, both bound to the ServiceAccount.
func EnsureCollectorRBAC(ctx context.Context, cs kubernetes.Interface, ns, sa, leaseName string) error {
	name := ns + "-" + sa
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}
	read := []string{"get", "list", "watch"}
	steps := []func() error{
		func() error {
			return upsert(ctx, cs.CoreV1().Namespaces(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		},
		func() error {
			return upsert(ctx, cs.CoreV1().ServiceAccounts(ns), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}})
		},
		func() error {
			return upsert(ctx, cs.RbacV1().Roles(ns), &rbacv1.Role{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-lease", Namespace: ns},
				Rules: []rbacv1.PolicyRule{
					{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
					{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{leaseName}, Verbs: []string{"get", "update"}},
				},
			})
		},
		func() error {
			return upsert(ctx, cs.RbacV1().RoleBindings(ns), &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-lease", Namespace: ns},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name + "-lease"},
				Subjects:   subject,
			})
		},
		func() error {
			return upsert(ctx, cs.RbacV1().ClusterRoles(), &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-read"},
				Rules: []rbacv1.PolicyRule{
					{APIGroups: []string{""}, Verbs: read, Resources: []string{"events", "namespaces", "namespaces/status", "nodes", "nodes/spec",
						"pods", "pods/status", "replicationcontrollers", "replicationcontrollers/status", "resourcequotas", "services"}},
					{APIGroups: []string{"apps"}, Verbs: read, Resources: []string{"daemonsets", "deployments", "replicasets", "statefulsets"}},
					{APIGroups: []string{"extensions"}, Verbs: read, Resources: []string{"daemonsets", "deployments", "replicasets"}},
					{APIGroups: []string{"batch"}, Verbs: read, Resources: []string{"jobs", "cronjobs"}},
					{APIGroups: []string{"autoscaling"}, Verbs: read, Resources: []string{"horizontalpodautoscalers"}},
				},
			})
		},
		func() error {
			return upsert(ctx, cs.RbacV1().ClusterRoleBindings(), &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-read"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name + "-read"},
				Subjects:   subject,
			})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}
