package proc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// FreePort returns a TCP port on 127.0.0.1 for a child process to listen on.
//
// A port from 127.0.0.1:0 is not good enough: it lies in the kernel's
// ephemeral range, and between the moment it is closed and the child's bind,
// any outgoing connection on the machine (collectors and tests talk to the API
// server all the time) may get it as its local port; the child then fails
// with "address already in use". So the port is chosen below (or above) that
// range, where the kernel never assigns one on its own. It is free now, this
// process has not returned it before, and no other process that uses FreePort
// gets it while this one lives: a lock file per port, held until exit (go test
// runs test binaries side by side).
func FreePort() (int, error) {
	lo, hi, err := ephemeralRange()
	if err != nil {
		return 0, err
	}
	switch {
	case lo-minPort >= minSpan:
		return freePortIn(minPort, lo)
	case 65535-hi >= minSpan:
		return freePortIn(hi+1, 65536)
	default:
		return 0, fmt.Errorf("no room outside the ephemeral port range %d-%d", lo, hi)
	}
}

const (
	minPort = 10000 // below: well-known and registered services
	minSpan = 1000  // the smallest range worth picking from
)

// ephemeralRange is the kernel's range for local ports it assigns itself.
func ephemeralRange() (lo, hi int, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("ip_local_port_range: %q", b)
	}
	if lo, err = strconv.Atoi(f[0]); err == nil {
		hi, err = strconv.Atoi(f[1])
	}
	return lo, hi, err
}

var (
	portsMu sync.Mutex
	held    = map[int]*os.File{} // ports returned by this process, with their locks
)

// freePortIn returns a port in [lo, hi) that is free, not returned before by
// this process, and not locked by another.
func freePortIn(lo, hi int) (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	dir := filepath.Join(os.TempDir(), "lrc-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, err
	}
	n := hi - lo
	start := rand.IntN(n)
	for i := range n {
		p := lo + (start+i)%n
		if held[p] != nil {
			continue
		}
		lock, err := lockPort(dir, p)
		if err != nil {
			continue // another process holds it
		}
		l, err := listenLocal(p)
		if err != nil {
			_ = lock.Close() // in use by something else
			continue
		}
		_ = l.Close() // only the port is wanted
		held[p] = lock
		return p, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d", lo, hi-1)
}

// lockPort takes the lock of port p: an exclusive flock on a file in dir,
// released when the file is closed or the process exits.
func lockPort(dir string, p int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("port %d is held by another process", p)
		}
		return nil, err
	}
	return f, nil
}

func listenLocal(p int) (net.Listener, error) {
	return net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
}
