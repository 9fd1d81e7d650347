package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	sigsyaml "sigs.k8s.io/yaml"
)

// ApplyFiles creates or replaces the objects of YAML manifests (several
// documents per file allowed). Only the kinds of deploy/ are supported:
// Namespace, ServiceAccount, Role, RoleBinding, ClusterRole,
// ClusterRoleBinding, ConfigMap, Deployment, PodDisruptionBudget.
func ApplyFiles(ctx context.Context, cs kubernetes.Interface, paths ...string) error {
	return applyFiles(ctx, cs, func(obj runtime.Object) []runtime.Object { return []runtime.Object{obj} }, paths...)
}

// applyFiles applies, for each object of paths, the objects edit makes of it.
func applyFiles(ctx context.Context, cs kubernetes.Interface, edit func(runtime.Object) []runtime.Object, paths ...string) error {
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		objs, err := decode(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, obj := range objs {
			for _, o := range edit(obj) {
				if err := apply(ctx, cs, o); err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
			}
		}
	}
	return nil
}

// DeployFiles are the manifests deployDir/kustomization.yaml lists under
// resources, in its order, as paths.
func DeployFiles(deployDir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(deployDir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := sigsyaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("kustomization.yaml: %w", err)
	}
	paths := make([]string, len(k.Resources))
	for i, r := range k.Resources {
		paths[i] = filepath.Join(deployDir, r)
	}
	return paths, nil
}

func decode(data []byte) ([]runtime.Object, error) {
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
		}
	}
	return out
}

func apply(ctx context.Context, cs kubernetes.Interface, obj runtime.Object) error {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return upsert(ctx, cs.CoreV1().Namespaces(), o)
	case *corev1.ServiceAccount:
		return upsert(ctx, cs.CoreV1().ServiceAccounts(o.Namespace), o)
	case *rbacv1.Role:
		return upsert(ctx, cs.RbacV1().Roles(o.Namespace), o)
	case *rbacv1.RoleBinding:
		return upsert(ctx, cs.RbacV1().RoleBindings(o.Namespace), o)
	case *rbacv1.ClusterRole:
		return upsert(ctx, cs.RbacV1().ClusterRoles(), o)
	case *rbacv1.ClusterRoleBinding:
		return upsert(ctx, cs.RbacV1().ClusterRoleBindings(), o)
	case *corev1.ConfigMap:
		return upsert(ctx, cs.CoreV1().ConfigMaps(o.Namespace), o)
	case *appsv1.Deployment:
		return upsert(ctx, cs.AppsV1().Deployments(o.Namespace), o)
	case *policyv1.PodDisruptionBudget:
		return upsert(ctx, cs.PolicyV1().PodDisruptionBudgets(o.Namespace), o)
	default:
		return fmt.Errorf("unsupported kind %T", obj)
	}
}
