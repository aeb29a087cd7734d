// Package serverproc runs the whirl server binary as a child process and
// learns where it listens from its "serving" log line, for the tests of the
// binary and for the load command (which wants the server's CPU and memory
// apart from its own).
package serverproc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tailLines is how many of the server's last log lines Tail keeps.
const tailLines = 20

// Options describe the child.
type Options struct {
	// Path is the server binary, or a script that execs it.
	Path string
	// Args follow "--addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --log-format
	// json", which Start always passes first so that the "serving" lines can
	// be read and no fixed port is taken; a later --addr or --http-addr wins.
	Args []string
	// Env is added to this process's environment, from which every WHIRL_*
	// variable is dropped first, so that the flags are the whole
	// configuration.
	Env []string
	// Log, if not nil, receives every line the server writes to stderr.
	Log io.Writer
	// SysProcAttr is passed to the child as is.
	SysProcAttr *syscall.SysProcAttr
	// StartTimeout bounds the wait for the "serving" line (default 30 s).
	StartTimeout time.Duration
}

// Server is a running server binary.
type Server struct {
	// Addr is the gRPC address from the "serving" line.
	Addr string
	// MetricsAddr is the metrics listener's, if the server logged one
	// before serving.
	MetricsAddr string
	// HTTPAddr is the HTTP listener's (Connect, gRPC-Web, the page), if the
	// server logged one before serving.
	HTTPAddr string
	// PID is the child's process id.
	PID int

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error

	mu        sync.Mutex
	tail      []string
	errorLogs int
}

// Start starts o.Path and waits until it logs "serving", it exits, ctx ends
// or o.StartTimeout passes; in the last three cases the child is killed and
// the error carries its last log lines.
func Start(ctx context.Context, o Options) (*Server, error) {
	args := append([]string{"--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "json"}, o.Args...)
	cmd := exec.Command(o.Path, args...)
	cmd.Env = append(withoutWhirlEnv(os.Environ()), o.Env...)
	cmd.SysProcAttr = o.SysProcAttr
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{PID: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{})}
	ready := make(chan struct{})
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		s.readLog(stderr, o.Log, ready)
	}()
	go func() {
		<-logDone // Wait closes the pipe: read it to the end first
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ready:
		return s, nil
	case <-s.exited:
		err = fmt.Errorf("server exited before serving: %v", s.waitErr)
	case <-t.C:
		err = fmt.Errorf("server not serving after %v", timeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Kill()
	return nil, fmt.Errorf("%w; last log lines:\n%s", err, s.Tail())
}

// withoutWhirlEnv drops WHIRL_* variables.
func withoutWhirlEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "WHIRL_") {
			out = append(out, kv)
		}
	}
	return out
}

// readLog reads the server's stderr to its end: it passes every line to
// log, learns the addresses from the start-up lines, counts ERROR lines and
// keeps the last ones.
func (s *Server) readLog(r io.Reader, log io.Writer, ready chan<- struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	errLevel := []byte(`"level":"ERROR"`)
	for sc.Scan() {
		line := sc.Bytes()
		if log != nil {
			// A new slice: appending in place would write into the
			// scanner's buffer.
			_, _ = log.Write(append(line[:len(line):len(line)], '\n'))
		}
		s.mu.Lock()
		if bytes.Contains(line, errLevel) {
			s.errorLogs++
		}
		s.tail = append(s.tail, string(line))
		if len(s.tail) > tailLines {
			s.tail = s.tail[1:]
		}
		s.mu.Unlock()
		if ready == nil {
			continue
		}
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		switch rec.Msg {
		case "serving metrics":
			s.MetricsAddr = rec.Addr
		case "serving http":
			s.HTTPAddr = rec.Addr
		case "serving":
			s.Addr = rec.Addr
			close(ready) // publishes the addresses to Start
			ready = nil
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// Tail is the last lines the server logged.
func (s *Server) Tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// ErrorLogs is how many lines the server logged at ERROR level.
func (s *Server) ErrorLogs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errorLogs
}

// Signal sends sig to the server.
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Exited is closed once the server has exited and its log is read.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Err is how the server exited (exec.Cmd.Wait's error); valid once Exited
// is closed.
func (s *Server) Err() error {
	<-s.exited
	return s.waitErr
}

// Stop sends SIGTERM and waits for the server to exit, killing it if it
// has not within grace; that, or an unclean exit, is the error.
func (s *Server) Stop(grace time.Duration) error {
	_ = s.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.exited:
		return s.waitErr
	case <-t.C:
		s.Kill()
		return fmt.Errorf("server did not stop within %v of SIGTERM; killed", grace)
	}
}

// Kill kills the server and waits until it has exited.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Build builds ./server of the module the working directory is in into
// dir/whirl-server, writing the build's output to log.
func Build(ctx context.Context, dir string, log io.Writer) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the whirl module: run from the repository, or give a prebuilt server binary")
	}
	bin := filepath.Join(dir, "whirl-server")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./server")
	build.Dir = filepath.Dir(gomod)
	build.Stdout, build.Stderr = log, log
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build ./server: %w", err)
	}
	return bin, nil
}
