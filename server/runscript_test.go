package main_test

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/serverproc"
)

// TestRunScriptForwardsSIGTERM: scripts/run.sh becomes the server, so the
// SIGTERM a supervisor sends to the pid it started stops the server
// gracefully (exit 0) and nothing is left listening.
func TestRunScriptForwardsSIGTERM(t *testing.T) {
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s, err := serverproc.Start(t.Context(), serverproc.Options{
		Path: filepath.Join("..", "scripts", "run.sh"),
		// The binary goes to a cache of the test's own; the Go build cache
		// stays the warm one.
		Env:          []string{"XDG_CACHE_HOME=" + t.TempDir(), "GOCACHE=" + strings.TrimSpace(string(gocache))},
		Log:          &logs,
		StartTimeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := procStat(s.PID)
	if err != nil || st.Comm != "whirl-server" {
		s.Kill()
		t.Fatalf("the pid run.sh started is %q (%v), not the server: the script did not exec it", st.Comm, err)
	}
	if err := s.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Exited():
	case <-time.After(30 * time.Second):
		s.Kill()
		t.Fatalf("server still running 30s after SIGTERM; logs:\n%s", logs.String())
	}
	if err := s.Err(); err != nil {
		t.Errorf("exit after SIGTERM: %v; logs:\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no graceful stop logged:\n%s", logs.String())
	}
	if c, err := net.Dial("tcp", s.Addr); err == nil {
		c.Close()
		t.Errorf("something still listens on %s", s.Addr)
	}
}
