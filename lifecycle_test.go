package leaderreceivercreator

import (
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// testClients are the clients tests inject, by configuration; any other
// configuration (the generated lifecycle tests start the receiver without a
// cluster) talks to a fresh fake clientset.
var testClients sync.Map // *Config -> kubernetes.Interface

func init() {
	newKubeClient = func(cfg *Config) (kubernetes.Interface, error) {
		if c, ok := testClients.Load(cfg); ok {
			return c.(kubernetes.Interface), nil
		}
		return fake.NewClientset(), nil
	}
}
