package leaderreceivercreator

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver"
	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

func checkpointsConfig() *Config {
	cfg := testConfigFor("testrcv")
	cfg.Checkpoints.Enabled = true
	cfg.Receivers["testrcv"]["storage"] = checkpointsID.String()
	// One instance: storageOf's client is the one whose fence matters.
	cfg.Signals = map[string][]string{"testrcv": {"metrics"}}
	return cfg
}

// storageOf is the lease_checkpoints client the replica's member (its last
// started instance) gets from its host, as k8s_objects gets it in Start.
func storageOf(t *testing.T, rp *replica) storage.Client {
	t.Helper()
	ext, ok := rp.b.lastHost().GetExtensions()[checkpointsID].(storage.Extension)
	require.True(t, ok, "the member's host has no %s", checkpointsID)
	client, err := ext.GetClient(context.Background(), component.KindReceiver, component.MustNewID("testrcv"), "")
	require.NoError(t, err)
	return client
}

// leaderWithCheckpoints starts replica a on c, waits until it leads, and
// returns it with its member's lease_checkpoints client.
func leaderWithCheckpoints(t *testing.T, c *cluster, cfg *Config) (*replica, storage.Client) {
	t.Helper()
	rp := newReplica(t, c, "a", cfg)
	rp.start(t)
	waitFor(t, time.Minute, rp.leading, "a did not lead")
	synctest.Wait()
	return rp, storageOf(t, rp)
}

// leaseCheckpoints decodes the checkpoints the Lease carries.
func leaseCheckpoints(t *testing.T, c *cluster) checkpointState {
	t.Helper()
	state := checkpointState{}
	if v := c.lease(t).Annotations[checkpointsAnnotation]; v != "" {
		require.NoError(t, json.Unmarshal([]byte(v), &state))
	}
	return state
}

// What a member stores in lease_checkpoints follows the Lease: a renewal
// carries it without a request of its own, the release at a graceful
// handover the last value (set while the member stopped), and the next
// leader's member finds it there.
// Invariant S16.
func TestCheckpointsFollowTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		require.NoError(t, c.tracker.Add(freeLease()))
		writes := 0
		c.onLeaseWrite = func(string, string, string) { writes++ }
		a, client := leaderWithCheckpoints(t, c, checkpointsConfig())
		before := writes
		for i := range 100 { // a member's checkpoints: many sets, no request each
			require.NoError(t, client.Set(context.Background(), "latestResourceVersion/events", []byte{byte(i)}))
		}
		time.Sleep(2 * time.Second) // one retry_period: one renewal
		synctest.Wait()
		assert.Equal(t, before+1, writes, "writes to the Lease for 100 checkpoints")
		assert.Equal(t, []byte{99}, leaseCheckpoints(t, c)["testrcv"]["latestResourceVersion/events"])

		// Its last checkpoint, set during its Shutdown, goes with the release.
		a.b.onShutdown = func() {
			assert.NoError(t, client.Set(context.Background(), "latestResourceVersion/events", []byte("final")))
		}
		b := newReplica(t, c, "b", checkpointsConfig())
		b.start(t)
		require.NoError(t, a.r.Shutdown(context.Background()))
		assert.Equal(t, []byte("final"), leaseCheckpoints(t, c)["testrcv"]["latestResourceVersion/events"])
		waitFor(t, time.Minute, b.leading, "b did not lead")
		synctest.Wait()
		got, err := storageOf(t, b).Get(context.Background(), "latestResourceVersion/events")
		require.NoError(t, err)
		assert.Equal(t, []byte("final"), got)
	})
}

// A checkpoint never moves past data that the fence dropped: once an
// instance's Shutdown has returned, its Sets are refused, counted and
// logged, and the Lease keeps the checkpoint from before.
// Invariants S12, S16.
func TestCheckpointAfterTheFenceClosedIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		require.NoError(t, c.tracker.Add(freeLease()))
		a, client := leaderWithCheckpoints(t, c, checkpointsConfig())
		require.NoError(t, client.Set(context.Background(), "rv", []byte("1")))
		require.NoError(t, a.r.Shutdown(context.Background()))
		// A goroutine of the member that outlived its Shutdown.
		err := client.Set(context.Background(), "rv", []byte("2"))
		require.ErrorIs(t, err, errFenced)
		assert.Equal(t, []byte("1"), leaseCheckpoints(t, c)["testrcv"]["rv"])
		assert.Equal(t, 1, a.logCount(logmsg.CheckpointRefused))
	})
}

// A crash between two renewals loses nothing: the next leader resumes from
// the checkpoint of the last renewal that landed, older than the member's
// last Set, so it repeats data and never skips any. Here the leader is cut
// off from the API server after its member moved on, as by a SIGKILL.
// Invariant S16.
func TestCrashBetweenRenewalsResumesFromTheLastOneThatLanded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		require.NoError(t, c.tracker.Add(freeLease()))
		a, client := leaderWithCheckpoints(t, c, checkpointsConfig())
		require.NoError(t, client.Set(context.Background(), "rv", []byte("10")))
		time.Sleep(2 * time.Second) // renewed with rv 10
		synctest.Wait()
		require.NoError(t, client.Set(context.Background(), "rv", []byte("20"))) // not renewed yet
		a.fail.Store(true)                                                       // gone
		b := newReplica(t, c, "b", checkpointsConfig())
		b.start(t)
		waitFor(t, time.Minute, b.leading, "b did not take over")
		synctest.Wait()
		got, err := storageOf(t, b).Get(context.Background(), "rv")
		require.NoError(t, err)
		assert.Equal(t, []byte("10"), got)
		err = client.Set(context.Background(), "rv", []byte("30")) // a's term is over
		require.ErrorIs(t, err, errFenced)
		assert.Equal(t, []byte("10"), leaseCheckpoints(t, c)["testrcv"]["rv"])
	})
}

// Past checkpoints::max_size a Set fails with storage.ErrStorageFull, is
// counted and logged, and the Lease keeps the previous checkpoints.
func TestCheckpointOverMaxSizeIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		require.NoError(t, c.tracker.Add(freeLease()))
		cfg := checkpointsConfig()
		cfg.Checkpoints.MaxSize = 200
		a, client := leaderWithCheckpoints(t, c, cfg)
		require.NoError(t, client.Set(context.Background(), "rv", []byte("small")))
		err := client.Set(context.Background(), "big", make([]byte, 300))
		require.ErrorIs(t, err, storage.ErrStorageFull)
		assert.ErrorContains(t, err, "checkpoints::max_size (200)")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		state := leaseCheckpoints(t, c)["testrcv"]
		assert.Equal(t, map[string][]byte{"rv": []byte("small")}, state)
		assert.Equal(t, 1, a.logCount(logmsg.CheckpointRefused))
		got, err := client.Get(context.Background(), "big")
		require.NoError(t, err)
		assert.Nil(t, got)
	})
}

// Hand edits of the Lease's labels keep the checkpoints; checkpoints that
// cannot be read (an annotation edited by hand) are logged and the members
// start without them, as without checkpoints.
func TestCheckpointsSurviveEditsAndBadAnnotations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		require.NoError(t, c.tracker.Add(freeLease()))
		a, client := leaderWithCheckpoints(t, c, checkpointsConfig())
		require.NoError(t, client.Set(context.Background(), "rv", []byte("1")))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		c.edit(t, func(l *coordinationv1.Lease) { l.Labels = map[string]string{"team": "obs"} })
		time.Sleep(4 * time.Second)
		synctest.Wait()
		assert.True(t, a.leading())
		assert.Equal(t, []byte("1"), leaseCheckpoints(t, c)["testrcv"]["rv"])

		require.NoError(t, a.r.Shutdown(context.Background()))
		c.edit(t, func(l *coordinationv1.Lease) { l.Annotations[checkpointsAnnotation] = "{not json" })
		b := newReplica(t, c, "b", checkpointsConfig())
		b.start(t)
		waitFor(t, time.Minute, b.leading, "b did not lead")
		synctest.Wait()
		assert.Equal(t, 1, b.logCount(logmsg.CheckpointUnreadable))
		got, err := storageOf(t, b).Get(context.Background(), "rv")
		require.NoError(t, err)
		assert.Nil(t, got)
	})
}

// One member's checkpoints under k8sobjects and under k8s_objects (the
// type's new name) are one: the key drops the type's underscores, as
// contrib's receivers do for their own storage.
func TestCheckpointKeySurvivesATypeRename(t *testing.T) {
	assert.Equal(t, storageKey("k8sobjects", ""), storageKey("k8s_objects", ""))
	assert.Equal(t, storageKey("k8sobjects/events", ""), storageKey("k8s_objects/events", ""))
	assert.NotEqual(t, storageKey("k8s_objects/events", ""), storageKey("k8s_objects/pods", ""))
	assert.NotEqual(t, storageKey("k8s_objects", ""), storageKey("k8s_objects", "other"))
}

// A member whose storage names no extension of the collector, or
// lease_checkpoints on a block without checkpoints, fails the collector's
// start with an error that names the field.
func TestWrongStorageFailsAtStart(t *testing.T) {
	host := &testHost{factories: map[component.Type]receiver.Factory{testType: testFactory(testType, &behaviour{journal: newJournal()})}}
	cfg := checkpointsConfig()
	cfg.Receivers["testrcv"]["storage"] = "file_storage/typo"
	err := checkStorage(cfg, "testrcv", host)
	require.EqualError(t, err, `receivers::testrcv::storage: no extension "file_storage/typo" in this collector's service::extensions (this block provides lease_checkpoints)`)
	cfg.Receivers["testrcv"]["storage"] = checkpointsID.String()
	cfg.Checkpoints.Enabled = false
	require.EqualError(t, checkStorage(cfg, "testrcv", host), "receivers::testrcv::storage: lease_checkpoints is provided only with checkpoints::enabled: true")
	cfg.Checkpoints.Enabled = true
	require.NoError(t, checkStorage(cfg, "testrcv", host))
}

// fakeTerm is a term that takes every payload until it ends.
type fakeTerm struct {
	payload string
	ended   bool
}

func (f *fakeTerm) Payload() string { return f.payload }
func (f *fakeTerm) SetPayload(v string) error {
	if f.ended {
		return errors.New("ended")
	}
	f.payload = v
	return nil
}

// The storage agrees with the data fence, also while the term is held: an
// instance whose data path closed (its Shutdown returned while the group's
// stop goes on) can no longer move its checkpoint, while another instance
// of the same member still can.
// Invariants S12, S16.
func TestCheckpointAgreesWithTheFence(t *testing.T) {
	term := &fakeTerm{}
	var refused []string
	cp, err := newCheckpoints(term, 1<<10, nil, func(member, reason string, _ error) { refused = append(refused, member+" "+reason) })
	require.NoError(t, err)
	fs := newFences(nil)
	stopped, running := fs.add("k8s_objects"), fs.add("k8s_objects")
	ctx := context.Background()
	client := func(f *fence) storage.Client {
		c, err := (&checkpointExtension{cp: cp, member: "k8s_objects", fence: f}).GetClient(ctx, component.KindReceiver, component.MustNewID("k8sobjects"), "")
		require.NoError(t, err)
		return c
	}
	require.NoError(t, client(stopped).Set(ctx, "rv", []byte("1")))
	stopped.close()
	require.ErrorIs(t, client(stopped).Set(ctx, "rv", []byte("2")), errFenced)
	require.ErrorIs(t, client(stopped).Delete(ctx, "rv"), errFenced)
	got, err := client(stopped).Get(ctx, "rv")
	require.NoError(t, err)
	assert.Equal(t, []byte("1"), got, "reads stay allowed")
	assert.JSONEq(t, `{"k8sobjects":{"rv":"MQ=="}}`, term.payload)
	require.NoError(t, client(running).Set(ctx, "rv", []byte("3")))
	assert.JSONEq(t, `{"k8sobjects":{"rv":"Mw=="}}`, term.payload)
	assert.Equal(t, []string{"k8s_objects fenced", "k8s_objects fenced"}, refused)

	term.ended = true
	require.ErrorIs(t, client(running).Set(ctx, "rv", []byte("4")), errFenced)
	assert.JSONEq(t, `{"k8sobjects":{"rv":"Mw=="}}`, term.payload)
}

// Batch applies its operations together, Gets in place; Close is harmless.
func TestCheckpointBatch(t *testing.T) {
	term := &fakeTerm{}
	cp, err := newCheckpoints(term, 1<<10, nil, func(string, string, error) {})
	require.NoError(t, err)
	ctx := context.Background()
	c, err := (&checkpointExtension{cp: cp, member: "m", fence: newFences(nil).add("m")}).GetClient(ctx, component.KindReceiver, component.MustNewID("m"), "")
	require.NoError(t, err)
	get := storage.GetOperation("a")
	require.NoError(t, c.Batch(ctx, storage.SetOperation("a", []byte("x")), get, storage.SetOperation("b", []byte("y")), storage.DeleteOperation("b")))
	assert.Equal(t, []byte("x"), get.Value)
	assert.JSONEq(t, `{"m":{"a":"eA=="}}`, term.payload)
	require.NoError(t, c.Delete(ctx, "a"))
	assert.JSONEq(t, `{}`, term.payload)
	require.NoError(t, c.Close(ctx))
}

// What the Lease carries is read defensively: JSON null (a hand edit)
// leaves no nil map behind to panic on; members no longer in the block lose
// their checkpoints; a state over max_size (the bound was lowered) still
// lets a member shrink it, though not grow it.
func TestCheckpointsFromTheLease(t *testing.T) {
	ctx := context.Background()
	client := func(cp *checkpoints, member string) storage.Client {
		c, err := (&checkpointExtension{cp: cp, member: member, fence: newFences(nil).add(member)}).GetClient(ctx, component.KindReceiver, component.MustNewID("x"), "")
		require.NoError(t, err)
		return c
	}
	cp, err := newCheckpoints(&fakeTerm{payload: "null"}, 1<<10, []string{"k8s_objects"}, func(string, string, error) {})
	require.NoError(t, err)
	require.NoError(t, client(cp, "k8s_objects").Set(ctx, "rv", []byte("1")))

	term := &fakeTerm{payload: `{"k8sobjects":{"rv":"MQ=="},"gone":{"rv":"Mg=="},"k8sobjects#other":{"x":"eA=="}}`}
	cp, err = newCheckpoints(term, 1<<10, []string{"k8s_objects", "k8s_cluster"}, func(string, string, error) {})
	require.NoError(t, err)
	got, err := client(cp, "k8s_objects").Get(ctx, "rv")
	require.NoError(t, err)
	assert.Equal(t, []byte("1"), got)
	require.NoError(t, client(cp, "k8s_objects").Set(ctx, "rv", []byte("2")))
	assert.JSONEq(t, `{"k8sobjects":{"rv":"Mg=="},"k8sobjects#other":{"x":"eA=="}}`, term.payload)

	big := &fakeTerm{payload: `{"k8sobjects":{"a":"` + strings.Repeat("A", 400) + `","rv":"MQ=="}}`}
	cp, err = newCheckpoints(big, 100, []string{"k8s_objects"}, func(string, string, error) {})
	require.NoError(t, err)
	require.ErrorIs(t, client(cp, "k8s_objects").Set(ctx, "more", []byte("x")), storage.ErrStorageFull)
	require.NoError(t, client(cp, "k8s_objects").Delete(ctx, "a"))
	assert.JSONEq(t, `{"k8sobjects":{"rv":"MQ=="}}`, big.payload)
}
