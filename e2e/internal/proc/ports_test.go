package proc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A CI run failed because a collector's pprof could not bind the port
// FreePort had returned: a port from 127.0.0.1:0 is in the kernel's ephemeral
// range, and between FreePort and the child's bind, one of the machine's many
// outgoing connections (collectors and tests talking to the API server) took
// it as its local port.
func TestFreePortIsOutsideTheEphemeralRange(t *testing.T) {
	lo, hi, err := ephemeralRange()
	require.NoError(t, err)
	for range 50 {
		p, err := FreePort()
		require.NoError(t, err)
		assert.Falsef(t, p >= lo && p <= hi, "port %d is in the ephemeral range %d-%d", p, lo, hi)
	}
}

func TestFreePortNeverRepeatsInAProcess(t *testing.T) {
	seen := map[int]bool{}
	for range 300 {
		p, err := FreePort()
		require.NoError(t, err)
		require.Falsef(t, seen[p], "port %d returned twice", p)
		seen[p] = true
	}
}

func TestFreePortSkipsAPortInUse(t *testing.T) {
	lo := unusedRange(2)
	l, err := listenLocal(lo)
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	p, err := freePortIn(lo, lo+2)
	require.NoError(t, err)
	assert.Equal(t, lo+1, p)
	_, err = freePortIn(lo, lo+2)
	require.Error(t, err, "both ports taken")
}

// Two test processes (go test runs packages side by side) must never get the
// same port: each holds a lock per port it returned until it exits.
func TestFreePortIsNotHandedToAnotherProcess(t *testing.T) {
	if os.Getenv("PROC_PORTS_CHILD") != "" {
		lo, _ := strconv.Atoi(os.Getenv("PROC_PORTS_CHILD"))
		for {
			p, err := freePortIn(lo, lo+6)
			if err != nil {
				fmt.Println("exhausted")
				return
			}
			fmt.Println(p)
		}
	}
	lo := unusedRange(6)
	mine := map[int]bool{}
	for range 3 {
		p, err := freePortIn(lo, lo+6)
		require.NoError(t, err)
		mine[p] = true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreePortIsNotHandedToAnotherProcess$")
	cmd.Env = append(os.Environ(), "PROC_PORTS_CHILD="+strconv.Itoa(lo))
	out, err := cmd.Output()
	require.NoError(t, err)
	var theirs []int
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	exhausted := false
	for sc.Scan() {
		line := sc.Text()
		if line == "exhausted" {
			exhausted = true
			break
		}
		p, err := strconv.Atoi(line)
		require.NoError(t, err, "child printed %q", line)
		assert.Falsef(t, mine[p], "port %d handed to both processes", p)
		theirs = append(theirs, p)
	}
	assert.True(t, exhausted)
	assert.Len(t, theirs, 3, "the child gets the three ports this process does not hold")
}

// unusedRange is the start of n ports that this process has not returned
// (with -count=N it runs its tests N times), apart from other runs of these
// tests by the process ID.
func unusedRange(n int) int {
	portsMu.Lock()
	defer portsMu.Unlock()
	lo := 20000 + os.Getpid()%1000*10
	for {
		free := true
		for p := lo; p < lo+n; p++ {
			free = free && held[p] == nil
		}
		if free {
			return lo
		}
		lo += n
	}
}
