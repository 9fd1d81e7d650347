// Package tcpproxy forwards TCP connections from a loopback port to a target
// address, and can cut them: a network partition of whatever talks through
// it (in the e2e scenarios: one collector replica and kube-apiserver).
package tcpproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Mode is what happens to new connections while the proxy is cut.
type Mode int

const (
	// Refuse closes the listening port: new connections are refused.
	Refuse Mode = iota + 1
	// Blackhole accepts new connections and never answers: requests hang
	// until the client gives up, as when packets are dropped.
	Blackhole
)

// Proxy forwards every connection accepted on Addr to its target until Cut.
// Its methods are safe for concurrent use.
type Proxy struct {
	addr   string // 127.0.0.1:port, kept across Cut and Restore
	target string

	mu     sync.Mutex
	ln     net.Listener          // nil while refusing or closed
	cut    Mode                  // 0 while forwarding
	conns  map[net.Conn]struct{} // both ends of every forwarded connection
	held   map[net.Conn]struct{} // connections blackholed while cut
	closed bool
	wg     sync.WaitGroup // accept loops and forwarders
}

// Start listens on a free port of 127.0.0.1 and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}, held: map[net.Conn]struct{}{}}
	p.serve(ln)
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// Cut closes every open connection and, until Restore, refuses or
// blackholes new ones.
func (p *Proxy) Cut(m Mode) error {
	if m != Refuse && m != Blackhole {
		return errors.New("tcpproxy: unknown mode")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("tcpproxy: closed")
	}
	p.cut = m
	if m == Refuse && p.ln != nil {
		_ = p.ln.Close() // the accept loop ends; new connections are refused
		p.ln = nil
	}
	closeAll(p.conns)
	return nil
}

// Restore forwards new connections again (listening on the same port after
// Refuse) and closes those held by Blackhole, so their clients reconnect.
func (p *Proxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("tcpproxy: closed")
	}
	if p.ln == nil {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return err
		}
		p.serve(ln)
	}
	p.cut = 0
	closeAll(p.held)
	return nil
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines. It returns the error of closing the listener.
// Idempotent.
func (p *Proxy) Close() error {
	var err error
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.ln != nil {
			err = p.ln.Close()
			p.ln = nil
		}
		closeAll(p.conns)
		closeAll(p.held)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// serve starts the accept loop of ln; p.mu is held.
func (p *Proxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Cut(Refuse) or Close
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handle(c)
			}()
		}
	}()
}

func (p *Proxy) handle(client net.Conn) {
	if p.holdIfCut(client) {
		return
	}
	upstream, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.cut != 0 || p.closed { // cut while dialling
		p.mu.Unlock()
		_ = client.Close()
		_ = upstream.Close()
		return
	}
	p.conns[client], p.conns[upstream] = struct{}{}, struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		// Either direction ending ends the connection: a client that sees
		// EOF from one side only might wait forever. The other pipe
		// closes them too, so an error here (already closed) is expected.
		_ = client.Close()
		_ = upstream.Close()
	}
	wg.Add(2)
	go pipe(upstream, client)
	go pipe(client, upstream)
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, upstream)
	p.mu.Unlock()
}

// holdIfCut keeps c open and unanswered while the proxy is blackholing (and
// closes it if the proxy is otherwise not forwarding). It reports whether c
// was taken care of.
func (p *Proxy) holdIfCut(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed || p.cut == Refuse:
		_ = c.Close() // accepted just before the listener closed
		return true
	case p.cut == Blackhole:
		p.held[c] = struct{}{}
		return true
	}
	return false
}

func closeAll(conns map[net.Conn]struct{}) {
	for c := range conns {
		_ = c.Close() // cutting it is the point; it may already be closed
		delete(conns, c)
	}
}
