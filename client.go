package leaderreceivercreator

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeClient reads and writes the Lease in one cluster.
type kubeClient struct {
	// leases is the coordination.k8s.io/v1 client, not a whole clientset:
	// building a client for every API group would run code that a standby
	// never needs (docs/performance.md, "A standby's own cost").
	leases coordinationv1client.LeasesGetter
	// cluster names the API server: its URL and a digest of the CA that
	// verifies it. Two configurations that reach one server (two kubeconfig
	// contexts, say) name the same cluster.
	cluster string
}

// newKubeClient builds the client that reads and writes the Lease. It is the
// one place tests inject a client: a fake clientset per configuration.
var newKubeClient = buildKubeClient

func buildKubeClient(cfg *Config) (kubeClient, error) {
	restCfg, err := restConfig(cfg)
	if err != nil {
		return kubeClient{}, err
	}
	cluster, err := clusterName(restCfg)
	if err != nil {
		return kubeClient{}, err
	}
	c, err := coordinationv1client.NewForConfig(restCfg)
	return kubeClient{leases: c, cluster: cluster}, err
}

// clusterName is the API server's URL, resolved as the client resolves it,
// and a digest of the CA that verifies it.
func clusterName(c *rest.Config) (string, error) {
	u, _, err := rest.DefaultServerUrlFor(c)
	if err != nil {
		return "", fmt.Errorf("the API server's address: %w", err)
	}
	ca := c.CAData
	if len(ca) == 0 && c.CAFile != "" {
		if ca, err = os.ReadFile(c.CAFile); err != nil {
			return "", fmt.Errorf("the API server's CA: %w", err)
		}
	}
	sum := sha256.Sum256(ca)
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"https": "443", "http": "80"}[u.Scheme])
	}
	server := strings.ToLower(u.Scheme+"://"+host) + strings.TrimRight(u.Path, "/")
	return server + " ca:" + hex.EncodeToString(sum[:8]), nil
}

func restConfig(cfg *Config) (*rest.Config, error) {
	switch cfg.AuthType {
	case AuthTypeKubeConfig:
		rules := clientcmd.NewDefaultClientConfigLoadingRules() // honours $KUBECONFIG
		overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
		c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("auth_type kubeConfig: %w", err)
		}
		return c, nil
	case AuthTypeNone:
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("auth_type none: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
		}
		return &rest.Config{
			Host:            "https://" + net.JoinHostPort(host, port),
			TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		}, nil
	default:
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("auth_type serviceAccount: %w", err)
		}
		return c, nil
	}
}
