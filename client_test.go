package leaderreceivercreator

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"
)

const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster: {server: "https://127.0.0.1:6443"}
- name: prod
  cluster: {server: "https://10.0.0.1:6443"}
contexts:
- name: dev
  context: {cluster: dev, user: me}
- name: prod
  context: {cluster: prod, user: me}
current-context: dev
users:
- name: me
  user: {token: secret}
`

func TestRestConfigPerAuthType(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, writeFile(path, testKubeconfig))
	t.Setenv("KUBECONFIG", path)

	cfg := testConfigFor("testrcv")
	cfg.AuthType = AuthTypeKubeConfig
	rc, err := restConfig(cfg)
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:6443", rc.Host, "the current context")
	assert.Equal(t, "secret", rc.BearerToken)

	cfg.Context = "prod"
	rc, err = restConfig(cfg)
	require.NoError(t, err)
	assert.Equal(t, "https://10.0.0.1:6443", rc.Host, "the configured context")

	cfg.Context = "staging"
	_, err = restConfig(cfg)
	assert.ErrorContains(t, err, `auth_type kubeConfig: context "staging" does not exist`)

	cfg = testConfigFor("testrcv")
	cfg.AuthType = AuthTypeNone
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err = restConfig(cfg)
	assert.EqualError(t, err, "auth_type none: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
	t.Setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	rc, err = restConfig(cfg)
	require.NoError(t, err)
	assert.Equal(t, "https://[fd00::1]:443", rc.Host)
	assert.Empty(t, rc.BearerToken, "no credentials")

	cfg.AuthType = AuthTypeServiceAccount // no token file outside a pod
	_, err = restConfig(cfg)
	assert.ErrorContains(t, err, "auth_type serviceAccount: ")
}

// A standby builds only the client of its Lease. A whole clientset (a client
// for every API group, ~50) runs code it never needs again: with the kernel
// mapping the binary's pages around each one touched, that was ~2.3 MiB of
// a standby's RSS (docs/performance.md, "A standby's own cost").
func TestKubeClientIsOnlyTheLeaseClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, writeFile(path, testKubeconfig))
	t.Setenv("KUBECONFIG", path)
	cfg := testConfigFor("testrcv")
	cfg.AuthType = AuthTypeKubeConfig
	kc, err := buildKubeClient(cfg)
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:6443 ca:e3b0c44298fc1c14", kc.cluster)
	clientset := reflect.TypeFor[kubernetes.Interface]()
	v := reflect.ValueOf(kc)
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Interface && !f.IsNil() {
			f = f.Elem()
		}
		assert.False(t, f.Type().Implements(clientset), "kubeClient.%s is a whole clientset (%s)", v.Type().Field(i).Name, f.Type())
	}
}
