package leaderreceivercreator

import (
	"sync"
	"sync/atomic"

	"k8s.io/client-go/kubernetes/fake"
)

// testClients are the clients tests inject, by configuration; any other
// configuration (the generated lifecycle tests start the receiver without a
// cluster) talks to a fresh fake clientset.
var testClients sync.Map // *Config -> kubeClient

// testExits counts the runners' exits in tests that build runners through
// the factory (real collectors): the test binary must not exit.
var testExits atomic.Int64

func init() {
	osExit = func(int) { testExits.Add(1) }
	newKubeClient = func(cfg *Config) (kubeClient, error) {
		if c, ok := testClients.Load(cfg); ok {
			return c.(kubeClient), nil
		}
		return kubeClient{leases: fake.NewClientset().CoordinationV1(), cluster: "fake"}, nil
	}
}
