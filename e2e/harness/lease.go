package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
)

// LeaseOptions say where a Lease lives and who campaigns for it.
type LeaseOptions struct {
	DeployDir string // deploy/: its RBAC (cluster.DeployRBACFiles)
	Namespace string // the Lease's namespace, created with deploy/'s RBAC in it
	// Name is the Lease's name (cluster.LeaseName if empty): deploy/'s Role
	// names it.
	Name string
	// ServiceAccounts of Namespace, one per process (fleet.ReplicaName,
	// clientgo.Name, and any other), each with deploy/'s permissions.
	ServiceAccounts []string
}

// Lease is a namespace with deploy/'s RBAC, moved into it for
// ServiceAccounts of its own (cluster.ApplyDeployRBACIn), and the audit log
// of those ServiceAccounts' requests from before any of them was used.
type Lease struct {
	CP              *controlplane.ControlPlane
	Namespace, Name string
	ServiceAccounts []string
	Audit           *audit.Log
}

// NewLease opens the audit log of the namespace's ServiceAccounts, applies
// deploy/'s RBAC for them, and waits until the API server's authorizer lets
// each one do what deploy/ grants (WaitAuthorized).
func NewLease(ctx context.Context, cp *controlplane.ControlPlane, o LeaseOptions) (*Lease, error) {
	if o.Name == "" {
		o.Name = cluster.LeaseName
	}
	l := &Lease{CP: cp, Namespace: o.Namespace, Name: o.Name, ServiceAccounts: o.ServiceAccounts}
	var err error
	if l.Audit, err = l.OpenAudit(); err != nil {
		return nil, err
	}
	target := cluster.RBACTarget{Namespace: o.Namespace, ServiceAccounts: o.ServiceAccounts}
	if o.Name != cluster.LeaseName {
		target.LeaseName = o.Name
	}
	if err := cluster.ApplyDeployRBACIn(ctx, cp.RESTConfig(), o.DeployDir, target); err != nil {
		return nil, fmt.Errorf("deploy/'s RBAC in %s: %w", o.Namespace, err)
	}
	for _, sa := range o.ServiceAccounts {
		if err := l.WaitAuthorized(ctx, sa, 20*time.Second); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// OpenAudit follows the audit log from now on, for the requests of the
// namespace's ServiceAccounts.
func (l *Lease) OpenAudit() (*audit.Log, error) {
	return audit.NewLog(l.CP.AuditLog, cluster.ServiceAccountUser(l.Namespace, ""))
}

// User is the API server's name for ServiceAccount sa of the namespace: in
// the audit log, and in SubjectAccessReviews.
func (l *Lease) User(sa string) string { return cluster.ServiceAccountUser(l.Namespace, sa) }

// WaitAuthorized waits (at most d) until the API server's authorizer has
// caught up with deploy/'s RBAC for ServiceAccount sa: it may update the
// Lease (deploy/rbac-lease.yaml), list Pods and get /metrics
// (deploy/rbac-cluster.yaml).
func (l *Lease) WaitAuthorized(ctx context.Context, sa string, d time.Duration) error {
	cs := l.CP.Clientset()
	checks := []struct {
		what string
		can  func() (bool, error)
	}{
		{"update Lease " + l.Namespace + "/" + l.Name, func() (bool, error) {
			return cluster.Can(ctx, cs, l.Namespace, sa, "update", "coordination.k8s.io", "leases", l.Name, l.Namespace)
		}},
		{"list pods", func() (bool, error) { return cluster.Can(ctx, cs, l.Namespace, sa, "list", "", "pods", "", "") }},
		{"get /metrics", func() (bool, error) { return cluster.CanPath(ctx, cs, l.Namespace, sa, "get", "/metrics") }},
	}
	deadline := time.Now().Add(d)
	for _, c := range checks {
		for {
			ok, err := c.can()
			if ok {
				break
			}
			if time.Now().After(deadline) {
				if err != nil {
					return fmt.Errorf("%s may not %s after %s: %w", l.User(sa), c.what, d, err)
				}
				return fmt.Errorf("%s may not %s after %s", l.User(sa), c.what, d)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
