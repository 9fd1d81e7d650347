package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
)

// target is the cluster the replicas run against.
type target struct {
	admin       *rest.Config
	cs          kubernetes.Interface
	cp          *controlplane.ControlPlane // nil for $KUBECONFIG's cluster
	created     atomic.Int64               // demo Events created
	stopEmitter context.CancelFunc
}

// connect uses $KUBECONFIG's cluster if set and reachable, else builds and
// starts a local control plane.
func connect(ctx context.Context, o options) (*target, error) {
	if kc := os.Getenv("KUBECONFIG"); kc != "" {
		cfg, kctx, err := cluster.FromKubeconfig(ctx, kc, 5*time.Second)
		if err == nil {
			say("using the cluster of $KUBECONFIG: context %q, %s", kctx, cfg.Host)
			cs, err := kubernetes.NewForConfig(cfg)
			return &target{admin: cfg, cs: cs}, err
		}
		say("$KUBECONFIG is set but not usable (%v); starting a local control plane instead", err)
	} else {
		say("$KUBECONFIG is not set: starting a local control plane (etcd + kube-apiserver%s)",
			map[bool]string{true: " + kube-controller-manager"}[o.controllerManager])
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{Progress: prefixWriter{}, ControllerManager: o.controllerManager})
	if err != nil {
		return nil, err
	}
	say("local control plane: %s (admin kubeconfig %s)", cp.Host, cp.Kubeconfig)
	return &target{admin: cp.RESTConfig(), cs: cp.Clientset(), cp: cp}, nil
}

// prepare seeds demo workloads (if asked), starts the demo Event emitter,
// creates the collectors' RBAC and returns their ServiceAccount kubeconfig.
func (t *target) prepare(ctx context.Context, o options, workDir string) (string, error) {
	seed := o.seed == "true" || o.seed == "auto" && t.cp != nil
	if seed {
		createPods := t.cp != nil && !o.controllerManager
		if err := cluster.SeedDemo(ctx, t.cs, "demo", createPods); err != nil {
			return "", fmt.Errorf("seed demo workloads: %w", err)
		}
		say("seeded namespace demo: %d Deployments%s; creating a demo Event every %s",
			len(cluster.DemoDeployments), map[bool]string{true: ", a Node and Running Pods"}[createPods], o.eventEvery)
		ectx, cancel := context.WithCancel(ctx)
		t.stopEmitter = cancel
		go cluster.EmitEvents(ectx, t.cs, "demo", o.eventEvery,
			func(*corev1.Event) { t.created.Add(1) },
			func(err error) { say("creating a demo Event failed: %v", err) })
	}

	sa := cluster.ServiceAccount
	if _, err := os.Stat(filepath.Join(o.deployDir, cluster.DeployRBACFiles[0])); err != nil {
		return "", fmt.Errorf("the collectors' RBAC comes from deploy/'s manifests: %w (set --deploy-dir)", err)
	}
	// deploy/'s RBAC as it is, or moved to --namespace.
	if err := cluster.ApplyDeployRBACIn(ctx, t.admin, o.deployDir, cluster.RBACTarget{Namespace: o.namespace}); err != nil {
		return "", fmt.Errorf("apply RBAC from %s: %w", o.deployDir, err)
	}
	say("applied the collectors' RBAC from %s %v in namespace %s", o.deployDir, cluster.DeployRBACFiles, o.namespace)
	path := filepath.Join(workDir, "collector.kubeconfig")
	if err := controlplane.WriteServiceAccountKubeconfig(ctx, t.admin, o.namespace, sa, "", path); err != nil {
		return "", err
	}
	say("collectors run as ServiceAccount %s/%s (kubeconfig %s)", o.namespace, sa, path)
	return path, nil
}

func (t *target) stop() {
	if t.stopEmitter != nil {
		t.stopEmitter()
	}
	if t.cp != nil {
		say("stopping the local control plane")
		if err := t.cp.Stop(); err != nil {
			say("stopping the control plane: %v", err)
		}
	}
}
