package leaderreceivercreator

import (
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// The generated lifecycle tests start the receiver without a cluster: every
// test in this package talks to a fake clientset unless it injects its own.
func init() {
	newKubeClient = func(*Config) (kubernetes.Interface, error) { return fake.NewClientset(), nil }
}
