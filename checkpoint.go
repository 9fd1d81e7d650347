package leaderreceivercreator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// Checkpoints that follow the Lease. A block with checkpoints::enabled
// provides its members a storage extension, lease_checkpoints: what a
// member stores there (k8s_objects' and k8s_events' resourceVersion
// checkpoints) lives in an annotation of the block's own Lease, so the next
// leader, on any replica, resumes where the last one stopped.
//
//   - Written only by the holder of the term, and fenced: a term's state is
//     carried by the term's own writes to the Lease (elector.Term.SetPayload),
//     each conditional on the Lease's resourceVersion; a write from a term
//     that has ended cannot land.
//   - No request per write: a Set changes the term's state in memory; the
//     next renewal (every retry_period) carries it, and the release at the
//     group's stop, after every member's Shutdown returned, the last one. A
//     lost term writes nothing more: the next leader resumes from the last
//     renewal's state (it repeats some data, loses none).
//   - The next leader reads it from the version of the Lease it takes over:
//     no request either.
//   - Bounded: the encoded state of all members together may not exceed
//     checkpoints::max_size; a Set past it fails (storage.ErrStorageFull),
//     is counted and logged, and the Lease keeps the previous state.
//   - Agrees with the data fence (fence.go): once an instance's data path is
//     closed, its Sets fail, so a checkpoint never moves past data that the
//     fence dropped.
//   - Keyed by the member's key in the block, with underscores removed from
//     its type as contrib's receivers do for their own storage keys, so that
//     k8sobjects and k8s_objects share one checkpoint.

// checkpointsAnnotation is the Lease's annotation that holds the state.
const checkpointsAnnotation = "leaderreceivercreator.io/checkpoints"

// checkpointsID is the ID of the storage extension a block provides.
var checkpointsID = component.MustNewID("lease_checkpoints")

// errFenced is returned by a Set or Delete after the instance's data path
// closed, or its term ended.
var errFenced = errors.New("lease_checkpoints: the sub-receiver's term is over; the checkpoint is not moved")

// payloadTerm is what checkpoints need of a term (elector.Term).
type payloadTerm interface {
	Payload() string
	SetPayload(string) error
}

// checkpointState is the annotation's content: by storage key (the member's
// normalized key, and the storage name if any), its keys and values.
type checkpointState map[string]map[string][]byte

// checkpoints is one term's storage.
type checkpoints struct {
	term    payloadTerm
	maxSize int
	refused func(member, reason string, err error) // counts and logs a refused Set

	mu    sync.Mutex
	state checkpointState
}

// newCheckpoints starts a term's storage from what the Lease carried when
// the term was won, keeping the checkpoints of the given members only (those
// of members no longer in the block are dropped with the next write). A
// state that cannot be read is dropped (the members start from nothing, as
// without checkpoints) and reported by err.
func newCheckpoints(term payloadTerm, maxSize int, members []string, refused func(member, reason string, err error)) (*checkpoints, error) {
	cp := &checkpoints{term: term, maxSize: maxSize, refused: refused, state: checkpointState{}}
	payload := term.Payload()
	if payload == "" {
		return cp, nil
	}
	var state checkpointState
	if err := json.Unmarshal([]byte(payload), &state); err != nil {
		return cp, fmt.Errorf("annotation %s of the Lease is not a checkpoint state; starting without: %w", checkpointsAnnotation, err)
	}
	keep := map[string]bool{}
	for _, m := range members {
		keep[storageKey(m, "")] = true
	}
	for key, entries := range state { // JSON null (a hand edit) leaves state nil: nothing to keep
		if base, _, _ := strings.Cut(key, "#"); keep[base] && entries != nil {
			cp.state[key] = entries
		}
	}
	return cp, nil
}

// storageKey is the key under which a member's storage lives.
func storageKey(member, storageName string) string {
	typ, name, _ := strings.Cut(member, "/")
	key := strings.ReplaceAll(typ, "_", "")
	if name != "" {
		key += "/" + name
	}
	if storageName != "" {
		key += "#" + storageName
	}
	return key
}

// update applies ops to a copy of key's state and, if the result fits, makes
// the term carry it; else nothing changes.
func (cp *checkpoints) update(member, key string, closed func() bool, ops ...*storage.Operation) error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	next := maps.Clone(cp.state)
	entries := maps.Clone(next[key])
	if entries == nil {
		entries = map[string][]byte{}
	}
	changed := false
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
			op.Value = cloneBytes(entries[op.Key])
		case storage.Set:
			entries[op.Key] = cloneBytes(op.Value)
			changed = true
		case storage.Delete:
			delete(entries, op.Key)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if closed() {
		cp.refused(member, "fenced", errFenced)
		return errFenced
	}
	if len(entries) == 0 {
		delete(next, key)
	} else {
		next[key] = entries
	}
	encoded, err := json.Marshal(next)
	if err != nil {
		return err
	}
	// Past the bound only a write that does not grow the state passes (a
	// bound lowered since, or a Delete, must not lock the members out).
	if len(encoded) > cp.maxSize && len(encoded) > cp.size() {
		err := fmt.Errorf("lease_checkpoints: %d bytes of checkpoints, over checkpoints::max_size (%d): %w", len(encoded), cp.maxSize, storage.ErrStorageFull)
		cp.refused(member, "size", err)
		return err
	}
	if err := cp.term.SetPayload(string(encoded)); err != nil {
		cp.refused(member, "fenced", err)
		return errFenced
	}
	cp.state = next
	return nil
}

// size is the encoded size of the current state; the caller holds mu.
func (cp *checkpoints) size() int {
	encoded, err := json.Marshal(cp.state)
	if err != nil {
		return 0
	}
	return len(encoded)
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// checkpointExtension is lease_checkpoints as one instance of a member
// sees it: its Sets are fenced by that instance's data path.
type checkpointExtension struct {
	cp     *checkpoints
	member string
	fence  *fence
}

var _ storage.Extension = (*checkpointExtension)(nil)

func (*checkpointExtension) Start(context.Context, component.Host) error { return nil }
func (*checkpointExtension) Shutdown(context.Context) error              { return nil }

// GetClient gives the member its storage, whichever component ID it asks
// for: its key in the block decides.
func (e *checkpointExtension) GetClient(_ context.Context, _ component.Kind, _ component.ID, storageName string) (storage.Client, error) {
	return &checkpointClient{e: e, key: storageKey(e.member, storageName)}, nil
}

type checkpointClient struct {
	e   *checkpointExtension
	key string
}

func (c *checkpointClient) closed() bool { return c.e.fence.closed.Load() }

func (c *checkpointClient) Get(ctx context.Context, key string) ([]byte, error) {
	op := storage.GetOperation(key)
	err := c.Batch(ctx, op)
	return op.Value, err
}

func (c *checkpointClient) Set(ctx context.Context, key string, value []byte) error {
	return c.Batch(ctx, storage.SetOperation(key, value))
}

func (c *checkpointClient) Delete(ctx context.Context, key string) error {
	return c.Batch(ctx, storage.DeleteOperation(key))
}

func (c *checkpointClient) Batch(_ context.Context, ops ...*storage.Operation) error {
	return c.e.cp.update(c.e.member, c.key, c.closed, ops...)
}

func (*checkpointClient) Close(context.Context) error { return nil }

// checkStorage refuses, when the collector starts, a member whose storage
// names neither lease_checkpoints (with checkpoints::enabled) nor an
// extension of the collector: the member would find no storage only when it
// starts, on the leader, and its group would fail there.
func checkStorage(cfg *Config, key string, host component.Host) error {
	name, ok := cfg.Receivers[key]["storage"].(string)
	if !ok || name == "" {
		return nil
	}
	var id component.ID
	if err := id.UnmarshalText([]byte(name)); err != nil {
		return fmt.Errorf("receivers::%s::storage: %q is not a component ID: %w", key, name, err)
	}
	if id == checkpointsID {
		if !cfg.Checkpoints.Enabled {
			return fmt.Errorf("receivers::%s::storage: %s is provided only with checkpoints::enabled: true", key, name)
		}
		return nil
	}
	if _, ok := host.GetExtensions()[id]; ok {
		return nil
	}
	hint := ""
	if cfg.Checkpoints.Enabled {
		hint = fmt.Sprintf(" (this block provides %s)", checkpointsID)
	}
	return fmt.Errorf("receivers::%s::storage: no extension %q in this collector's service::extensions%s", key, name, hint)
}

// checkpoints is the term's storage when the block provides one, else nil.
func (r *runner) checkpoints(term payloadTerm) *checkpoints {
	if !r.cfg.Checkpoints.Enabled {
		return nil
	}
	var mu sync.Mutex
	logged := map[string]bool{} // member and reason, once per term
	members := slices.Collect(maps.Keys(r.cfg.Receivers))
	cp, err := newCheckpoints(term, r.cfg.Checkpoints.MaxSize, members, func(member, reason string, err error) {
		r.telemetry.checkpointRefused(member, reason)
		mu.Lock()
		first := !logged[member+" "+reason]
		logged[member+" "+reason] = true
		mu.Unlock()
		if first {
			r.logger.Warn(logmsg.CheckpointRefused, zap.String("receiver", member), zap.String("reason", reason), zap.Error(err))
		}
	})
	if err != nil {
		r.logger.Warn(logmsg.CheckpointUnreadable, zap.Error(err))
	}
	return cp
}
