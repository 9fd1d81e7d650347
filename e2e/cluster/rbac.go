package cluster

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
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

// ApplyDeployRBAC applies DeployRBACFiles from deployDir as they are. It
// reports false (and does nothing) if any of them is missing.
func ApplyDeployRBAC(ctx context.Context, cfg *rest.Config, deployDir string) (bool, error) {
	var paths []string
	for _, f := range DeployRBACFiles {
		p := filepath.Join(deployDir, f)
		if _, err := os.Stat(p); err != nil {
			return false, nil
		}
		paths = append(paths, p)
	}
	return true, ApplyFiles(ctx, cfg, paths...)
}

// RBACTarget says where ApplyDeployRBACIn moves deploy/'s RBAC.
type RBACTarget struct {
	// Namespace replaces deploy/'s namespace: the Namespace itself, the
	// ServiceAccount, the Lease Role and the bindings' subjects; the
	// ClusterRoleBinding is named <name>-<Namespace>.
	Namespace string
	// LeaseName, when set, replaces deploy/'s Lease name in the Role's
	// resourceNames (another distribution campaigning for another Lease).
	LeaseName string
	// ServiceAccounts, when set, replace deploy/'s ServiceAccount: one of
	// each name, and every binding binds each of them — the same
	// permissions, but each replica its own identity, so that its requests
	// can be told apart (in the audit log).
	ServiceAccounts []string
}

// ApplyDeployRBACIn applies DeployRBACFiles from deployDir moved as to says,
// so that several tests can each have the collectors' permissions exactly as
// deploy/ grants them, in a namespace of their own. The ClusterRole is
// applied as it is.
func ApplyDeployRBACIn(ctx context.Context, cfg *rest.Config, deployDir string, to RBACTarget) error {
	paths := make([]string, len(DeployRBACFiles))
	for i, f := range DeployRBACFiles {
		paths[i] = filepath.Join(deployDir, f)
	}
	ns, sas := to.Namespace, to.ServiceAccounts
	subjects := func(obj *unstructured.Unstructured) {
		ss, _, _ := unstructured.NestedSlice(obj.Object, "subjects")
		var out []any
		for _, x := range ss {
			s, ok := x.(map[string]any)
			if !ok || s["kind"] != rbacv1.ServiceAccountKind {
				out = append(out, x)
				continue
			}
			s["namespace"] = ns
			if len(sas) == 0 {
				out = append(out, s)
			}
			for _, sa := range sas {
				c := maps.Clone(s)
				c["name"] = sa
				out = append(out, c)
			}
		}
		_ = unstructured.SetNestedSlice(obj.Object, out, "subjects")
	}
	leaseName := func(obj *unstructured.Unstructured) {
		rules, _, _ := unstructured.NestedSlice(obj.Object, "rules")
		for _, x := range rules {
			r, ok := x.(map[string]any)
			if !ok {
				continue
			}
			names, _ := r["resourceNames"].([]any)
			for i, n := range names {
				if n == LeaseName {
					names[i] = to.LeaseName
				}
			}
		}
		_ = unstructured.SetNestedSlice(obj.Object, rules, "rules")
	}
	return applyFiles(ctx, cfg, func(obj *unstructured.Unstructured) []*unstructured.Unstructured {
		switch obj.GetKind() {
		case "Namespace":
			obj.SetName(ns)
		case "ClusterRole":
		case "ClusterRoleBinding":
			obj.SetName(obj.GetName() + "-" + ns)
			subjects(obj)
		case "ServiceAccount":
			obj.SetNamespace(ns)
			if len(sas) > 0 {
				out := make([]*unstructured.Unstructured, len(sas))
				for i, sa := range sas {
					out[i] = obj.DeepCopy()
					out[i].SetName(sa)
				}
				return out
			}
		case "RoleBinding":
			obj.SetNamespace(ns)
			subjects(obj)
		case "Role":
			obj.SetNamespace(ns)
			if to.LeaseName != "" {
				leaseName(obj)
			}
		default:
			obj.SetNamespace(ns)
		}
		return []*unstructured.Unstructured{obj}
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
	return review(ctx, cs, ns, sa, authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: resourceNS, Verb: verb, Group: group, Resource: res, Subresource: sub, Name: name,
		},
	})
}

// CanPath is Can for a non-resource URL, e.g. get /metrics.
func CanPath(ctx context.Context, cs kubernetes.Interface, ns, sa, verb, path string) (bool, error) {
	return review(ctx, cs, ns, sa, authorizationv1.SubjectAccessReviewSpec{
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: verb, Path: path},
	})
}

func review(ctx context.Context, cs kubernetes.Interface, ns, sa string, spec authorizationv1.SubjectAccessReviewSpec) (bool, error) {
	// What the API server makes of the ServiceAccount's token.
	spec.User = ServiceAccountUser(ns, sa)
	spec.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}
