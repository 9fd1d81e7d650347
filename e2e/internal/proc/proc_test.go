package proc

import (
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStopKillsTheWholeGroup(t *testing.T) {
	// A shell that ignores SIGTERM and has a child: Stop must escalate to
	// SIGKILL and take the child with it.
	ready := make(chan struct{})
	p, err := Start(Spec{
		Name:    "sh",
		Path:    "/bin/sh",
		Args:    []string{"-c", `trap "" TERM; sleep 300 & echo started; wait; wait`},
		LogPath: filepath.Join(t.TempDir(), "sh.log"),
		OnLine:  func([]byte) { close(ready) },
	})
	require.NoError(t, err)
	<-ready // the trap is set
	require.True(t, Alive(p.PID))
	begin := time.Now()
	require.NoError(t, p.Stop(200*time.Millisecond))
	assert.GreaterOrEqual(t, time.Since(begin), 200*time.Millisecond, "SIGTERM was ignored; SIGKILL came after the grace period")
	assert.True(t, p.Exited())
	assert.False(t, Alive(p.PID))
	assert.False(t, GroupAlive(p.PID), "a process of the group survived")
	assert.Equal(t, -1, p.ExitCode(), "killed by a signal")
}

func TestOnLineGetsEveryLineInOrder(t *testing.T) {
	var (
		mu    sync.Mutex
		lines []string
	)
	p, err := Start(Spec{
		Name:    "sh",
		Path:    "/bin/sh",
		Args:    []string{"-c", `echo one; echo two >&2; printf three`},
		LogPath: filepath.Join(t.TempDir(), "sh.log"),
		OnLine: func(b []byte) {
			mu.Lock()
			lines = append(lines, string(b))
			mu.Unlock()
		},
	})
	require.NoError(t, err)
	<-p.Done()
	require.NoError(t, p.Err())
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"one", "two", "three"}, lines)
	assert.NoError(t, p.Signal(syscall.SIGTERM), "signalling an exited process is a no-op")
}
