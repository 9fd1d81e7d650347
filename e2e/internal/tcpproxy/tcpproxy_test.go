package tcpproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line over c and reads it back within a second.
func roundTrip(c net.Conn, line string) error {
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return errors.New("echo mismatch: " + got)
	}
	return nil
}

func dial(t *testing.T, addr string) net.Conn {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestForwardCutRestore(t *testing.T) {
	p, err := Start(echoServer(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })

	before := dial(t, p.Addr())
	require.NoError(t, roundTrip(before, "hello"))

	// Refuse: the open connection ends, new ones are refused.
	require.NoError(t, p.Cut(Refuse))
	assert.Error(t, roundTrip(before, "after cut"), "an open connection is closed by Cut")
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "dial while refusing: %v", err)

	require.NoError(t, p.Restore())
	require.NoError(t, roundTrip(dial(t, p.Addr()), "restored"), "same address after Restore")

	// Blackhole: the open connection ends, new ones connect and hang.
	open := dial(t, p.Addr())
	require.NoError(t, roundTrip(open, "open"))
	require.NoError(t, p.Cut(Blackhole))
	assert.Error(t, roundTrip(open, "after cut"))
	held := dial(t, p.Addr())
	err = roundTrip(held, "into the void")
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "a blackholed request times out: %v", err)

	require.NoError(t, p.Restore())
	_ = held.SetDeadline(time.Now().Add(time.Second))
	_, err = held.Read(make([]byte, 1))
	assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "Restore closes held connections: %v", err)
	require.NoError(t, roundTrip(dial(t, p.Addr()), "restored again"))

	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "idempotent")
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	assert.Error(t, err)
	assert.Error(t, p.Cut(Refuse))
	assert.Error(t, p.Restore())
}

// Cut closes the upstream side of every open connection too, in both
// modes: the server sees its clients go (kube-apiserver ends their watches)
// instead of keeping them open for a client that cannot talk any more.
func TestCutClosesUpstream(t *testing.T) {
	for _, mode := range []Mode{Refuse, Blackhole} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = ln.Close() })
		ended := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				ended <- err
				return
			}
			defer func() { _ = c.Close() }()
			_, _ = io.Copy(c, c) // echo until the proxy closes its side
			ended <- nil
		}()
		p, err := Start(ln.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		client := dial(t, p.Addr())
		require.NoError(t, roundTrip(client, "watching"))

		require.NoError(t, p.Cut(mode))
		select {
		case err := <-ended:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("mode %d: the upstream connection is still open after Cut", mode)
		}
	}
}
