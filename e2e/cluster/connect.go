package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// FromKubeconfig loads path (which may be a list, like $KUBECONFIG) with
// its current context and checks within timeout that the cluster answers.
func FromKubeconfig(ctx context.Context, path string, timeout time.Duration) (*rest.Config, string, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(path)}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := cs.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error(); err != nil {
		return nil, "", fmt.Errorf("cluster %s not reachable: %w", cfg.Host, err)
	}
	raw, _ := cc.RawConfig()
	return cfg, raw.CurrentContext, nil
}
