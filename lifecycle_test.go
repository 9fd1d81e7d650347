package leaderreceivercreator

import (
	"sync"

	"k8s.io/client-go/kubernetes/fake"
)

// testClients are the clients tests inject, by configuration; any other
// configuration (the generated lifecycle tests start the receiver without a
// cluster) talks to a fresh fake clientset.
var testClients sync.Map // *Config -> kubeClient

func init() {
	newKubeClient = func(cfg *Config) (kubeClient, error) {
		if c, ok := testClients.Load(cfg); ok {
			return c.(kubeClient), nil
		}
		return kubeClient{Interface: fake.NewClientset(), cluster: "fake"}, nil
	}
}
