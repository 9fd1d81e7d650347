package leaderreceivercreator

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/receiver"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// Two blocks of one collector name the same Lease namespace/name in two
// clusters (two kubeconfig contexts). Before: they shared one slot, keyed by
// namespace/name only, so one of them never led. Now each leads in its own
// cluster.
// Invariant S13.
func TestSameLeaseInTwoClustersHasTwoSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		dev, prod := newCluster(j), newCluster(j)
		a := newReplica(t, dev, "a", testConfigFor("testrcv"))
		b := newReplicaIn(t, prod, "b", testConfigFor("testrcv"), a.r.process)
		a.start(t)
		b.start(t)
		waitFor(t, time.Minute, func() bool { return a.leading() && b.leading() },
			"one block does not lead its own cluster's Lease (a %v, b %v)", a.leading(), b.leading())
	})
}

// The cluster a slot is keyed by is the API server and its CA, as resolved,
// not the kubeconfig context's name: two contexts that reach one server share
// a slot (or a reload through another context would start a second group).
// Invariant S13.
func TestClusterNameIsTheServerAndItsCA(t *testing.T) {
	const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: Q0EtMQ==}
- name: one-again
  cluster: {server: "https://127.0.0.1:6443/", certificate-authority-data: Q0EtMQ==}
- name: default-port
  cluster: {server: "https://127.0.0.1", certificate-authority-data: Q0EtMQ==}
- name: explicit-port
  cluster: {server: "https://127.0.0.1:443", certificate-authority-data: Q0EtMQ==}
- name: other-ca
  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: Q0EtMg==}
- name: other-server
  cluster: {server: "https://10.0.0.1:6443", certificate-authority-data: Q0EtMQ==}
contexts:
- {name: one, context: {cluster: one, user: me}}
- {name: one-again, context: {cluster: one-again, user: me}}
- {name: default-port, context: {cluster: default-port, user: me}}
- {name: explicit-port, context: {cluster: explicit-port, user: me}}
- {name: other-ca, context: {cluster: other-ca, user: me}}
- {name: other-server, context: {cluster: other-server, user: me}}
current-context: one
users:
- name: me
  user: {token: secret}
`
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, writeFile(path, kubeconfig))
	t.Setenv("KUBECONFIG", path)
	name := func(context string) string {
		cfg := testConfigFor("testrcv")
		cfg.AuthType, cfg.Context = AuthTypeKubeConfig, context
		rc, err := restConfig(cfg)
		require.NoError(t, err)
		n, err := clusterName(rc)
		require.NoError(t, err)
		return n
	}
	assert.Equal(t, name("one"), name("one-again"), "one server through two contexts")
	assert.Equal(t, name("default-port"), name("explicit-port"), "https's default port")
	assert.NotEqual(t, name("one"), name("default-port"))
	assert.NotEqual(t, name("one"), name("other-ca"))
	assert.NotEqual(t, name("one"), name("other-server"))
	assert.Contains(t, name("one"), "https://127.0.0.1:6443")
}

// Block B's member takes 20s to stop, well within B's own deadline; block
// A's member of the same receiver type stops meanwhile. Before: the stop
// held a process-wide lock of the type, so A's member could not begin its
// stop, A missed its deadline, blamed its own member and the process exited.
// A type that keeps no shared state takes no lock now.
// Invariant S15.
func TestSlowStopOfOneBlockNeverDelaysAnother(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		cfgB := testConfigFor("testrcv")
		cfgB.LeaderElection.LeaseName = "lease-b"
		cfgB.LeaderElection.LeaseDuration = 60 * time.Second
		cfgB.LeaderElection.RenewDeadline = 30 * time.Second
		b := newReplicaIn(t, c, "b", cfgB, a.r.process) // two blocks of one collector
		b.b.shutdownDelay = 20 * time.Second
		a.start(t)
		b.start(t)
		waitFor(t, time.Minute, func() bool { return a.leading() && b.leading() }, "the blocks do not lead")

		go func() { _ = b.r.Shutdown(context.Background()) }() // B's stop takes 20s
		synctest.Wait()
		a.fail.Store(true) // A's term is lost: it has about 3.6s to stop
		waitFor(t, 10*time.Second, func() bool { return !a.leading() }, "A's member did not stop while B's was stopping")
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Zero(t, a.logCount(logmsg.GroupNotStopped)+b.logCount(logmsg.GroupNotStopped))
		assert.Zero(t, a.exitCode.Load())
		assert.NoError(t, a.host.fatalErr())
	})
}

// Members of a type that keeps shared state still stop one at a time,
// process-wide; a wait for that lock is bounded by the waiter's own stop,
// and the error names the member that held it.
// Invariant S15.
func TestSharedTypeLockWaitNamesTheHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		typ := component.MustNewType("sharedstate")
		s := &sharedState{live: map[component.Config]int{}, release: make(chan struct{})}
		host := &testHost{factories: map[component.Type]receiver.Factory{typ: s.factory(typ)}}
		p := newProcessLeases()
		start := func(block string) *runningGroup {
			set := receivertestSettings()
			set.ID = component.MustNewIDWithName("leader_receiver_creator", block)
			g, err := resolveGroup(testConfigFor("sharedstate"), host, set, consumers{metrics: nopSink()}, p)
			require.NoError(t, err)
			rg := g.start(host, func(string, *componentstatus.Event) {}, nil, nil)
			<-rg.Done()
			require.NoError(t, rg.Err())
			return rg
		}
		a, b := start("a"), start("b")

		go func() { _ = b.stop(context.Background()) }() // its Shutdown waits for s.release
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err := a.stop(ctx)
		var hung *errNotStopped
		require.ErrorAs(t, err, &hung)
		assert.Equal(t, []string{"sharedstate"}, hung.keys)
		assert.ErrorContains(t, err, "waited for the lock of receiver type sharedstate, held by sharedstate/leader_receiver_creator/b")
		assert.True(t, errors.Is(err, context.DeadlineExceeded))

		s.release <- struct{}{} // b's member stops; a's stops once it has the lock
		s.release <- struct{}{}
		<-a.Stopped()
		assert.Empty(t, s.live)
		assert.Equal(t, int32(1), s.maxInside.Load(), "never two calls into the factory's state at once")
	})
}

// A type whose instances wrap shared state is created under its lock every
// time; one that does not is created without it once an instance was seen.
// Invariants S10, S15.
func TestCreateLocksOnlyUntilTheTypeIsKnownUnshared(t *testing.T) {
	p := newProcessLeases()
	typ := component.MustNewType("x")
	assert.True(t, p.createNeedsLock(typ))
	p.learn(typ, &sharedStateReceiver{})
	assert.True(t, p.createNeedsLock(typ), "a wrapper of shared state")
	p.learn(typ, &testReceiver{})
	assert.False(t, p.createNeedsLock(typ))
	assert.True(t, p.claimFatal())
	assert.False(t, p.claimFatal(), "one FatalError per process")
	exits := 0
	p.exitProcess(func(int) { exits++ }, exitCode)
	p.exitProcess(func(int) { exits++ }, exitCode)
	assert.Equal(t, 1, exits, "one exit per process")
}
