package main_test

import (
	"bufio"
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
	"testing"
	"time"
)

// binaries built once for the end-to-end tests.
type binaries struct {
	server, grpcurl string
}

var bins binaries

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "whirl-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins = binaries{server: filepath.Join(dir, "whirl-server"), grpcurl: filepath.Join(dir, "grpcurl")}
	code := func() int {
		defer os.RemoveAll(dir)
		for _, b := range []struct{ out, pkg, modfile string }{
			{bins.server, ".", ""},
			// grpcurl is pinned in the tools module, outside the main module's graph.
			{bins.grpcurl, "github.com/fullstorydev/grpcurl/cmd/grpcurl", "../tools/go.mod"},
		} {
			args := []string{"build", "-o", b.out}
			if b.modfile != "" {
				args = append(args, "-modfile="+b.modfile)
			}
			cmd := exec.Command("go", append(args, b.pkg)...)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "building", b.pkg, ":", err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// process is a running whirl server binary.
type process struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
	done chan error
}

// startServer runs the built binary on a loopback port and waits for its
// "serving" log line, which carries the real address.
func startServer(t *testing.T, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bins.server, append([]string{"--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "WHIRL_ADMIN_TOKEN=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.logs.WriteString(line + "\n")
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				addrCh <- rec.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	select {
	case p.addr = <-addrCh:
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start; logs:\n%s", p.logs)
	}
	return p
}

// grpcurl runs the real grpcurl binary against p; it returns stdout+stderr and
// whether it exited 0.
func (p *process) grpcurl(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	full := append([]string{"-plaintext", "-max-time", "20"}, args...)
	full = append(full[:len(full)-1], p.addr, full[len(full)-1])
	out, err := exec.Command(bins.grpcurl, full...).CombinedOutput()
	return string(out), err == nil
}

// syncBuffer collects a child's log lines while tests read them.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) WriteString(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGrpcurlLeaseRPCs(t *testing.T) {
	p := startServer(t, "--capacity", "2", "--admin-token", "ops-token")

	out, ok := p.grpcurl(t, "list")
	for _, svc := range []string{"whirl.v1.AnimationService", "whirl.v1.LeaseAdminService", "grpc.health.v1.Health"} {
		if !ok || !strings.Contains(out, svc) {
			t.Fatalf("grpcurl list lacks %s (ok=%v):\n%s", svc, ok, out)
		}
	}
	out, ok = p.grpcurl(t, "-d", `{"service":"whirl.v1.AnimationService"}`, "grpc.health.v1.Health/Check")
	if !ok || !strings.Contains(out, "SERVING") {
		t.Fatalf("health check: %s", out)
	}

	out, ok = p.grpcurl(t, "-d", `{"holder":"ops"}`, "whirl.v1.AnimationService/AcquireLease")
	var l struct{ LeaseId, Handle, Ttl string }
	if !ok || json.Unmarshal([]byte(out), &l) != nil || len(l.LeaseId) != 32 || l.Ttl != "300s" {
		t.Fatalf("acquire: %s", out)
	}
	if out, ok = p.grpcurl(t, "-d", `{"lease_id":"`+l.LeaseId+`"}`, "whirl.v1.AnimationService/RenewLease"); !ok || !strings.Contains(out, l.LeaseId) {
		t.Fatalf("renew: %s", out)
	}

	out, ok = p.grpcurl(t, "-H", "authorization: Bearer ops-token", "whirl.v1.LeaseAdminService/ListLeases")
	if !ok || !strings.Contains(out, `"holder": "ops"`) || !strings.Contains(out, l.Handle) || strings.Contains(out, l.LeaseId) {
		t.Fatalf("list leases with token: %s", out)
	}
	if out, ok = p.grpcurl(t, "whirl.v1.LeaseAdminService/ListLeases"); ok || !strings.Contains(out, "Unauthenticated") {
		t.Fatalf("list leases without token should fail Unauthenticated: %s", out)
	}

	if out, ok = p.grpcurl(t, "-d", `{"lease_id":"`+l.LeaseId+`"}`, "whirl.v1.AnimationService/ReleaseLease"); !ok {
		t.Fatalf("release: %s", out)
	}
	if out, ok = p.grpcurl(t, "-d", `{"lease_id":"`+l.LeaseId+`"}`, "whirl.v1.AnimationService/RenewLease"); ok || !strings.Contains(out, "NotFound") {
		t.Fatalf("renew after release should fail NotFound: %s", out)
	}
	if out, ok = p.grpcurl(t, "-d", `{"holder":""}`, "whirl.v1.AnimationService/AcquireLease"); ok || !strings.Contains(out, "InvalidArgument") {
		t.Fatalf("empty holder should fail InvalidArgument: %s", out)
	}
	if strings.Contains(p.logs.String(), l.LeaseId) {
		t.Fatal("server logs contain a lease token")
	}
}

func TestSIGTERMExitsCleanly(t *testing.T) {
	p := startServer(t)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, p.logs)
		}
		p.done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
}

func TestBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{{"--capacity", "0"}, {"--lease-ttl", "banana"}, {"--log-format", "xml"}, {"stray"}} {
		err := exec.Command(bins.server, args...).Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit code 2", args, err)
		}
	}
}
