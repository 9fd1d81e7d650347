// Package proc starts child processes in their own process group, copies
// their combined output to a log file (and optionally line by line to a
// callback), and stops them by PID: SIGTERM to the group, then SIGKILL.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Spec describes a process to start.
type Spec struct {
	Name    string   // for messages
	Path    string   // executable
	Args    []string // arguments, without argv[0]
	Env     []string // full environment; nil means the parent's
	Dir     string   // working directory; "" means the parent's
	LogPath string   // combined stdout+stderr is appended here (required)
	// OnLine, if set, is called with each complete output line (without the
	// newline), one call at a time, in order. It must not retain the slice.
	OnLine func(line []byte)
}

// Process is a started child. It is reaped by a background goroutine.
type Process struct {
	Name    string
	PID     int
	LogPath string

	cmd     *exec.Cmd
	logFile *os.File
	lines   *lineWriter
	done    chan struct{}
	err     error // set before done is closed
}

// Start starts the process described by s.
func Start(s Spec) (*Process, error) {
	if s.LogPath == "" {
		return nil, errors.New("proc: LogPath is required")
	}
	f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = s.Env
	cmd.Dir = s.Dir
	// Own process group so Stop can signal everything the child spawned, and
	// so a terminal's Ctrl-C reaches only the driver, which stops children in
	// order. Pdeathsig is a safety net should the parent die without Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Process{Name: s.Name, LogPath: s.LogPath, cmd: cmd, logFile: f, done: make(chan struct{})}
	var out io.Writer = f
	if s.OnLine != nil {
		p.lines = &lineWriter{w: f, fn: s.OnLine}
		out = p.lines
	}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p.PID = cmd.Process.Pid
	go func() {
		err := cmd.Wait()
		if p.lines != nil {
			p.lines.flush()
		}
		_ = f.Close() // the child wrote to it directly; nothing is buffered here
		p.err = err
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the exit error (nil for exit status 0); valid once Done is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// ExitCode is the exit code, or -1 if killed by a signal or still running.
func (p *Process) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Signal sends sig to the process (not its group).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	return syscall.Kill(p.PID, sig)
}

// Stop sends SIGTERM to the process group, waits up to grace, then sends
// SIGKILL to the group and waits for the process to be reaped. It returns
// nil if the process is gone (whatever its exit status).
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		killGroup(p.PID, syscall.SIGKILL) // leftovers of the group, if any
		return waitGroupGone(p.PID)
	}
	killGroup(p.PID, syscall.SIGTERM)
	select {
	case <-p.done:
		killGroup(p.PID, syscall.SIGKILL)
		return waitGroupGone(p.PID)
	case <-time.After(grace):
	}
	return p.Kill()
}

// Kill sends SIGKILL to the process group and waits for the process.
func (p *Process) Kill() error {
	killGroup(p.PID, syscall.SIGKILL)
	select {
	case <-p.done:
		return waitGroupGone(p.PID)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.PID)
	}
}

func killGroup(pgid int, sig syscall.Signal) {
	_ = syscall.Kill(-pgid, sig)
}

// Alive reports whether a process with this PID exists and is not a zombie.
func Alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no procfs: trust kill(0)
	}
	// Format: pid (comm) state ...; comm may contain spaces and parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// GroupAlive reports whether a live (non-zombie) process remains in process
// group pgid.
func GroupAlive(pgid int) bool {
	if pgid <= 0 || syscall.Kill(-pgid, 0) != nil {
		return false
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return true // no procfs: trust kill(0)
	}
	for _, d := range dirs {
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) >= 4 && string(f[0]) != "Z" && string(f[2]) == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// waitGroupGone waits (polling) until no live process remains in the group
// of the reaped leader, e.g. children being killed by the same SIGKILL.
func waitGroupGone(pgid int) error {
	deadline := time.Now().Add(5 * time.Second)
	for GroupAlive(pgid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of group %d still alive after SIGKILL", pgid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// lineWriter copies to w and calls fn for each complete line.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	fn  func([]byte)
	buf []byte
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(b)
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.fn(bytes.TrimRight(l.buf[:i], "\r"))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) == 0 {
		l.buf = nil // let the backing array go
	}
	return n, err
}

func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.fn(l.buf)
		l.buf = nil
	}
}
