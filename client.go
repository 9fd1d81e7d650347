package leaderreceivercreator

import (
	"errors"
	"fmt"
	"net"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// newKubeClient builds the client that reads and writes the Lease. It is the
// one place tests inject a client: a fake clientset per configuration.
var newKubeClient = func(cfg *Config) (kubernetes.Interface, error) {
	restCfg, err := restConfig(cfg)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(restCfg)
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
