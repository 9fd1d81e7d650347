package harness

import (
	"context"
	"errors"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
)

// DemoNamespace holds the demo workloads (cluster.SeedDemo) that the
// collectors' k8s_cluster reports and the client-go candidates list.
const DemoNamespace = "demo"

// StartControlPlane starts a control plane (controlplane.Start) and seeds
// DemoNamespace; without a controller manager, SeedDemo also creates a
// Ready Node and Running Pods. Stop it when done.
func StartControlPlane(ctx context.Context, opts controlplane.Options) (*controlplane.ControlPlane, error) {
	cp, err := controlplane.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := cluster.SeedDemo(ctx, cp.Clientset(), DemoNamespace, !opts.ControllerManager); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return cp, nil
}
