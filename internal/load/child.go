package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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

// childServer is the real server binary running as a child process, so that
// its RSS and CPU are its own.
type childServer struct {
	cmd         *exec.Cmd
	dir         string // temporary directory holding the binary, if built
	Addr        string
	MetricsAddr string
	AdminToken  string
	PID         int

	exited  chan struct{}
	waitErr error

	mu        sync.Mutex
	tail      []string // last lines of stderr
	errorLogs int      // lines logged at ERROR level
}

type childOptions struct {
	// Binary is a prebuilt server; empty = go build ./server.
	Binary   string
	Capacity int
	// Pprof also serves /debug/pprof on the metrics listener.
	Pprof bool
	// OwnSession starts the server in a session of its own.
	OwnSession bool
	// Extra flags for the server, appended last.
	Extra []string
	// Log receives build and start-up messages.
	Log io.Writer
}

// buildServer runs go build -o <tmp>/whirl-server ./server in the module root.
func buildServer(ctx context.Context, log io.Writer) (bin, dir string, err error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", "", errors.New("not inside the whirl module: run from the repository or pass -server-bin")
	}
	dir, err = os.MkdirTemp("", "whirl-load-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "whirl-server")
	fmt.Fprintf(log, "building ./server ...\n")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./server")
	build.Dir = filepath.Dir(gomod)
	build.Stdout, build.Stderr = log, log
	if err := build.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build ./server: %w", err)
	}
	return bin, dir, nil
}

// startChild starts the server on 127.0.0.1:0 with JSON logs and an admin
// token, and waits for its "serving" log line to learn the port.
func startChild(ctx context.Context, o childOptions) (*childServer, error) {
	c := &childServer{exited: make(chan struct{})}
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, c.dir, err = buildServer(ctx, o.Log); err != nil {
			return nil, err
		}
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	c.AdminToken = hex.EncodeToString(tok)
	args := []string{
		"--addr", "127.0.0.1:0",
		"--log-format", "json",
		"--admin-token", c.AdminToken,
		"--capacity", fmt.Sprint(o.Capacity),
		"--metrics-addr", "127.0.0.1:0",
		"--shutdown-grace", "5s",
	}
	if o.Pprof {
		args = append(args, "--pprof")
	}
	args = append(args, o.Extra...)
	c.cmd = exec.Command(bin, args...)
	// The admin token travels in argv (visible in ps); it is random per run
	// and the server listens on loopback only.
	c.cmd.Env = withoutWhirlEnv(os.Environ())
	dieWithParent(c.cmd, o.OwnSession)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		c.cleanup()
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		c.cleanup()
		return nil, err
	}
	c.PID = c.cmd.Process.Pid

	ready := make(chan struct{})
	go c.readLog(stderr, ready)
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()

	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-ready:
		return c, nil
	case <-c.exited:
		err = fmt.Errorf("server exited before serving: %v\n%s", c.waitErr, c.Tail())
	case <-t.C:
		err = fmt.Errorf("server not serving after 30s\n%s", c.Tail())
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.Stop()
	return nil, err
}

// withoutWhirlEnv drops WHIRL_* variables, so that the flags given here are
// the whole configuration.
func withoutWhirlEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "WHIRL_") {
			out = append(out, kv)
		}
	}
	return out
}

// readLog consumes the server's JSON log: it learns the addresses from the
// start-up lines, counts ERROR lines and keeps a short tail for diagnostics.
func (c *childServer) readLog(r io.Reader, ready chan<- struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	errLevel := []byte(`"level":"ERROR"`)
	for sc.Scan() {
		line := sc.Bytes()
		c.mu.Lock()
		if bytes.Contains(line, errLevel) {
			c.errorLogs++
		}
		c.tail = append(c.tail, string(line))
		if len(c.tail) > 20 {
			c.tail = c.tail[1:]
		}
		c.mu.Unlock()
		if signalled {
			continue
		}
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		switch rec.Msg {
		case "serving metrics":
			c.mu.Lock()
			c.MetricsAddr = rec.Addr
			c.mu.Unlock()
		case "serving":
			c.mu.Lock()
			c.Addr = rec.Addr
			c.mu.Unlock()
			signalled = true
			close(ready)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// Tail is the last lines the server logged.
func (c *childServer) Tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

// ErrorLogs is how many lines the server logged at ERROR level.
func (c *childServer) ErrorLogs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errorLogs
}

// Stop sends SIGTERM, waits for a graceful exit (SIGKILL after 15s) and
// removes the built binary. It reports an unclean exit.
func (c *childServer) Stop() error {
	defer c.cleanup()
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-c.exited:
		return c.waitErr
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
		return errors.New("server did not stop within 15s of SIGTERM; killed")
	}
}

func (c *childServer) cleanup() {
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
		c.dir = ""
	}
}
