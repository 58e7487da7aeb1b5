//go:build !edge

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"time"
)

// child is a gridlink process a benchmark runs beside itself, so that its
// memory and CPU are its own: the gateway of bench gateway, the platform
// of bench ocpp.
type child struct {
	name    string // in messages: "gateway", "platform"
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error // valid once exited is closed
}

// startChild runs exe (empty: this executable) with args and env added to
// this process's, its stderr going to logPath, and waits up to timeout
// until its stdout has printed a line matching each of want. It returns
// each pattern's first submatch.
func startChild(name, exe string, args, env []string, logPath string, timeout time.Duration, want ...*regexp.Regexp) (*child, []string, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, nil, fmt.Errorf("find this executable: %w", err)
		}
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	c := &child{name: name, cmd: exec.Command(exe, args...), logPath: logPath, exited: make(chan struct{})}
	c.cmd.Stderr = logFile
	c.cmd.Env = append(os.Environ(), env...)
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, nil, err
	}
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody listens after start-up
			}
		}
		close(lines)
	}()
	go func() {
		c.waitErr = c.cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	got := make([]string, len(want))
	missing := len(want)
	deadline := time.After(timeout)
	for missing > 0 {
		select {
		case line, ok := <-lines:
			if !ok {
				<-c.exited
				return nil, nil, c.explain(fmt.Errorf("the %s exited while starting", name))
			}
			for i, re := range want {
				if m := re.FindStringSubmatch(line); m != nil && got[i] == "" {
					got[i] = m[1]
					missing--
				}
			}
		case <-deadline:
			c.kill()
			return nil, nil, c.explain(fmt.Errorf("the %s did not start within %v", name, timeout))
		}
	}
	return c, got, nil
}

// explain adds the tail of the child's log to err.
func (c *child) explain(err error) error {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return err
	}
	return fmt.Errorf("%w; %s log (tail):\n%s", err, c.name, b)
}

// kill ends the child if it still runs.
func (c *child) kill() {
	select {
	case <-c.exited:
	default:
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// stop sends SIGTERM and reports whether the child exited with status 0
// within grace; if not, it is killed.
func (c *child) stop(grace time.Duration) (bool, string) {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return false, fmt.Sprintf("SIGTERM: %v", err)
	}
	select {
	case <-c.exited:
	case <-time.After(grace):
		c.kill()
		return false, fmt.Sprintf("still running %v after SIGTERM; killed", grace)
	}
	if c.waitErr != nil {
		return false, c.explain(c.waitErr).Error()
	}
	return true, ""
}

// benchWorkDir returns keep, created, or a new temporary directory that
// cleanup removes.
func benchWorkDir(keep, prefix string) (dir string, cleanup func(), err error) {
	if keep != "" {
		if err := os.MkdirAll(keep, 0o750); err != nil {
			return "", nil, fmt.Errorf("--keep: %w", err)
		}
		return keep, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// writeBenchResult prints a benchmark's result as indented JSON or, with
// asJSON false, with print.
func writeBenchResult(w io.Writer, asJSON bool, res any, print func()) error {
	if !asJSON {
		print()
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
