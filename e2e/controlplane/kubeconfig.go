package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a single-context kubeconfig with bearer-token auth.
func writeKubeconfig(path, server string, caData []byte, insecure bool, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = server
	cluster.CertificateAuthorityData = caData
	cluster.InsecureSkipTLSVerify = insecure && len(caData) == 0
	cfg.Clusters["local"] = cluster
	auth := clientcmdapi.NewAuthInfo()
	auth.Token = token
	cfg.AuthInfos[user] = auth
	kctx := clientcmdapi.NewContext()
	kctx.Cluster = "local"
	kctx.AuthInfo = user
	cfg.Contexts[user+"@local"] = kctx
	cfg.CurrentContext = user + "@local"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*cfg, path)
}

// ServiceAccountKubeconfig creates a 24h token for ServiceAccount
// namespace/sa (which must exist) and writes a kubeconfig that uses it
// against server ("" means c.Host; a proxy in front of the apiserver on
// 127.0.0.1 also works, the serving certificate covers 127.0.0.1). It
// returns the file's path, under c.Dir.
func (c *ControlPlane) ServiceAccountKubeconfig(ctx context.Context, namespace, sa, server string) (string, error) {
	path := filepath.Join(c.Dir, "kubeconfigs", fmt.Sprintf("%s-%s-%d.kubeconfig", namespace, sa, time.Now().UnixNano()))
	return path, WriteServiceAccountKubeconfig(ctx, c.RESTConfig(), namespace, sa, server, path)
}

// WriteServiceAccountKubeconfig is ServiceAccountKubeconfig for any cluster:
// admin is a configuration allowed to create serviceaccounts/token; the CA
// (or insecure-skip-tls-verify) is copied from it. server "" means
// admin.Host.
func WriteServiceAccountKubeconfig(ctx context.Context, admin *rest.Config, namespace, sa, server, path string) error {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	expiration := int64((24 * time.Hour).Seconds())
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiration},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for serviceaccount %s/%s: %w", namespace, sa, err)
	}
	if server == "" {
		server = admin.Host
	}
	caData := admin.CAData
	if len(caData) == 0 && admin.CAFile != "" {
		if caData, err = os.ReadFile(admin.CAFile); err != nil {
			return err
		}
	}
	return writeKubeconfig(path, server, caData, admin.Insecure, "system:serviceaccount:"+namespace+":"+sa, tr.Status.Token)
}
