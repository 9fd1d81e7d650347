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

// kubeUser is one user of a kubeconfig, with a context of its own.
type kubeUser struct {
	name, token, context string
}

// writeKubeconfig writes a kubeconfig with bearer-token auth and a context
// per user; the first user's is the current context.
func writeKubeconfig(path, server string, caData []byte, insecure bool, users ...kubeUser) error {
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = server
	cluster.CertificateAuthorityData = caData
	cluster.InsecureSkipTLSVerify = insecure && len(caData) == 0
	cfg.Clusters["local"] = cluster
	for _, u := range users {
		auth := clientcmdapi.NewAuthInfo()
		auth.Token = u.token
		cfg.AuthInfos[u.name] = auth
		kctx := clientcmdapi.NewContext()
		kctx.Cluster = "local"
		kctx.AuthInfo = u.name
		cfg.Contexts[u.context] = kctx
	}
	cfg.CurrentContext = users[0].context
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
	cr, err := c.ServiceAccountCredentials(ctx, namespace, sa, server)
	return cr.Kubeconfig, err
}

// Credentials are what a pod running as a ServiceAccount has: a kubeconfig
// (what the collectors are given, with K8S_AUTH_TYPE=kubeConfig) and the
// token as a file of its own (as mounted, for a component that reads it
// itself, e.g. prometheus' authorization.credentials_file).
type Credentials struct {
	Kubeconfig string
	TokenFile  string
}

// ServiceAccountCredentials is ServiceAccountKubeconfig, plus the token in a
// file of its own, and, for each of contexts (more ServiceAccounts of
// namespace), a context named after it with that ServiceAccount's token,
// for a component configured with a context of its own (k8s_observer's
// auth_type kubeConfig with context). The files are under c.Dir.
func (c *ControlPlane) ServiceAccountCredentials(ctx context.Context, namespace, sa, server string, contexts ...string) (Credentials, error) {
	base := filepath.Join(c.Dir, "kubeconfigs", fmt.Sprintf("%s-%s-%d", namespace, sa, time.Now().UnixNano()))
	cr := Credentials{Kubeconfig: base + ".kubeconfig", TokenFile: base + ".token"}
	return cr, writeServiceAccountCredentials(ctx, c.RESTConfig(), namespace, sa, server, cr, contexts)
}

// WriteServiceAccountKubeconfig is ServiceAccountKubeconfig for any cluster:
// admin is a configuration allowed to create serviceaccounts/token; the CA
// (or insecure-skip-tls-verify) is copied from it. server "" means
// admin.Host.
func WriteServiceAccountKubeconfig(ctx context.Context, admin *rest.Config, namespace, sa, server, path string) error {
	return writeServiceAccountCredentials(ctx, admin, namespace, sa, server, Credentials{Kubeconfig: path}, nil)
}

// writeServiceAccountCredentials writes cr.Kubeconfig and, if set,
// cr.TokenFile.
func writeServiceAccountCredentials(ctx context.Context, admin *rest.Config, namespace, sa, server string, cr Credentials, contexts []string) error {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
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
	var users []kubeUser
	for i, name := range append([]string{sa}, contexts...) {
		token, err := serviceAccountToken(ctx, cs, namespace, name)
		if err != nil {
			return err
		}
		u := kubeUser{name: "system:serviceaccount:" + namespace + ":" + name, token: token, context: name}
		if i == 0 {
			u.context = u.name + "@local"
			if cr.TokenFile != "" {
				if err := os.MkdirAll(filepath.Dir(cr.TokenFile), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(cr.TokenFile, []byte(token), 0o600); err != nil {
					return err
				}
			}
		}
		users = append(users, u)
	}
	return writeKubeconfig(cr.Kubeconfig, server, caData, admin.Insecure, users...)
}

// serviceAccountToken creates a 24h token for ServiceAccount namespace/sa.
func serviceAccountToken(ctx context.Context, cs kubernetes.Interface, namespace, sa string) (string, error) {
	expiration := int64((24 * time.Hour).Seconds())
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiration},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for serviceaccount %s/%s: %w", namespace, sa, err)
	}
	return tr.Status.Token, nil
}
