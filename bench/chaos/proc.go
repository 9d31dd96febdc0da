package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one server process (a Sidekick service or a nats-server) run the
// way Kubernetes runs a container: started again restartDelay after it
// exits, whether it was killed on purpose or died by itself, until the
// harness stops it. Its output is appended to one log file across
// restarts.
type proc struct {
	name         string
	path         string
	args         []string
	env          []string
	logPath      string
	restartDelay time.Duration
	logger       *slog.Logger

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process is reaped
	started chan struct{} // closed and replaced at every start
	starts  int
	// expectKill is set from a kill until the supervisor sees the exit.
	expectKill bool
	crashes    int // exits the harness did not cause
	stopping   bool
	// held keeps the process down until release (a fault longer than a
	// restart).
	held bool

	done chan struct{} // closed when supervise returns
}

// startProc starts the process and supervises it until stop.
func startProc(p *proc) error {
	p.started = make(chan struct{})
	p.done = make(chan struct{})
	if err := p.spawn(); err != nil {
		return err
	}
	go p.supervise()
	return nil
}

// errStopping refuses a start while the harness stops the process.
var errStopping = errors.New("stopping")

// spawn starts one process. It holds p.mu throughout, so stop sees either
// no new process or one it will signal.
func (p *proc) spawn() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return errStopping
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C in the terminal reaches only the
	// harness, which stops everything in order; and killed with the
	// harness if the harness dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	p.starts++
	close(p.started)
	p.started = make(chan struct{})
	return nil
}

// supervise restarts the process whenever it exits, until stop.
func (p *proc) supervise() {
	defer close(p.done)
	for {
		p.mu.Lock()
		exited := p.exited
		p.mu.Unlock()
		<-exited
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		if !p.expectKill {
			p.crashes++
			p.logger.Warn("process exited by itself; restarting it", "process", p.name, "state", p.cmd.ProcessState.String())
		}
		p.expectKill = false
		p.mu.Unlock()
		time.Sleep(p.restartDelay)
		for {
			p.mu.Lock()
			held, stopping := p.held, p.stopping
			p.mu.Unlock()
			if stopping {
				return
			}
			if !held {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for {
			err := p.spawn()
			if errors.Is(err, errStopping) {
				return
			}
			if err == nil {
				break
			}
			p.logger.Error("restart failed", "process", p.name, "error", err)
			time.Sleep(time.Second)
		}
	}
}

// kill sends SIGKILL and waits until the process is gone; the supervisor
// starts it again after restartDelay unless hold is set, in which case it
// stays down until release.
func (p *proc) kill(hold bool) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.expectKill = true
	p.held = hold
	p.mu.Unlock()
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-exited
	return nil
}

// release lets a held process start again.
func (p *proc) release() {
	p.mu.Lock()
	p.held = false
	p.mu.Unlock()
}

// waitStarted returns once the process has been started more than n
// times, or ctx ends.
func (p *proc) waitStarted(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		starts, ch := p.starts, p.started
		p.mu.Unlock()
		if starts > n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%s not started again: %w", p.name, ctx.Err())
		}
	}
}

// startCount is how many times the process has been started.
func (p *proc) startCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// crashCount is how many times the process exited without the harness
// killing it.
func (p *proc) crashCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.crashes
}

// stop ends supervision and the process: SIGTERM, then SIGKILL after
// grace. Harmless on a process already stopped.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	if p.done == nil || p.stopping {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
	<-p.done
}
