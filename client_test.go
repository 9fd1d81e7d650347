package leaderreceivercreator

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
