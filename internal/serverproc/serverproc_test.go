package serverproc_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/serverproc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// script writes an executable shell script standing in for the server.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "server.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStartReadsServingLine(t *testing.T) {
	p := script(t, `
trap 'echo "{\"msg\":\"stopped\"}" >&2; exit 0' TERM
echo "flags: $*" >&2
echo "env: ${WHIRL_ADMIN_TOKEN:-unset} ${EXTRA}" >&2
echo '{"level":"INFO","msg":"serving metrics","addr":"127.0.0.1:9101"}' >&2
echo '{"level":"INFO","msg":"serving http","addr":"127.0.0.1:9102"}' >&2
echo '{"level":"ERROR","msg":"something"}' >&2
echo '{"level":"INFO","msg":"serving","addr":"127.0.0.1:9100"}' >&2
while :; do sleep 0.05; done
`)
	t.Setenv("WHIRL_ADMIN_TOKEN", "from-the-parent")
	var log strings.Builder
	s, err := serverproc.Start(context.Background(), serverproc.Options{Path: p, Args: []string{"--capacity", "3"}, Env: []string{"EXTRA=yes"}, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != "127.0.0.1:9100" || s.MetricsAddr != "127.0.0.1:9101" || s.HTTPAddr != "127.0.0.1:9102" || s.PID <= 0 {
		t.Errorf("Addr %q, MetricsAddr %q, HTTPAddr %q, PID %d", s.Addr, s.MetricsAddr, s.HTTPAddr, s.PID)
	}
	if err := s.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	for _, want := range []string{"flags: --addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --log-format json --capacity 3", "env: unset yes", `"msg":"stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if s.ErrorLogs() != 1 || !strings.Contains(s.Tail(), "stopped") {
		t.Errorf("%d ERROR lines, tail %q", s.ErrorLogs(), s.Tail())
	}
}

func TestStartFails(t *testing.T) {
	exits := script(t, "echo 'bad flag --nope' >&2\nexit 2\n")
	if _, err := serverproc.Start(context.Background(), serverproc.Options{Path: exits}); err == nil ||
		!strings.Contains(err.Error(), "exited before serving") || !strings.Contains(err.Error(), "bad flag --nope") {
		t.Errorf("server exiting at once: %v", err)
	}
	silent := script(t, "exec sleep 60\n")
	start := time.Now()
	if _, err := serverproc.Start(context.Background(), serverproc.Options{Path: silent, StartTimeout: 200 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "not serving after") {
		t.Errorf("silent server: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v", d)
	}
}
