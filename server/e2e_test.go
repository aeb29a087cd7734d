package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
	"github.com/whirl-dev/whirl/internal/serverproc"
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
		code := m.Run()
		if code == 0 {
			// Every child and client connection must be gone by now.
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, "goleak:", err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

// process is a running whirl server binary.
type process struct {
	srv      *serverproc.Server
	addr     string // gRPC
	httpAddr string // Connect, gRPC-Web and the page
	logs     *syncBuffer
	done     chan error
}

// startServer runs the built binary on a loopback port and waits for its
// "serving" log line, which carries the real address.
func startServer(t *testing.T, args ...string) *process {
	t.Helper()
	return startServerWith(t, bins.server, args...)
}

// startServerWith is startServer running bin (the server binary, or a
// script that execs it).
func startServerWith(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{logs: &syncBuffer{}, done: make(chan error, 1)}
	// Each server gets a video cache of its own unless args name one.
	args = append([]string{"--cache-dir", t.TempDir()}, args...)
	s, err := serverproc.Start(t.Context(), serverproc.Options{Path: bin, Args: args, Log: p.logs})
	if err != nil {
		t.Fatal(err)
	}
	p.srv, p.addr, p.httpAddr = s, s.Addr, s.HTTPAddr
	go func() { p.done <- s.Err() }()
	t.Cleanup(func() {
		s.Kill()
		<-p.done
	})
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

func (s *syncBuffer) Write(v []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(v)
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
	if err := p.srv.Signal(syscall.SIGTERM); err != nil {
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
	for _, args := range [][]string{{"--capacity", "0"}, {"--lease-ttl", "banana"}, {"--log-format", "xml"}, {"--ffmpeg-nice", "20"}, {"--ffmpeg-nice", "-1"}, {"stray"}} {
		err := exec.Command(bins.server, args...).Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit code 2", args, err)
		}
	}
}

// TestGrpcurlRenderAnimation: an operator acquires a lease and streams a
// 2-second animation with nothing but grpcurl; the base64 chunks decode into
// an MP4 that ffprobe accepts.
func TestGrpcurlRenderAnimation(t *testing.T) {
	p := startServer(t)
	out, ok := p.grpcurl(t, "-d", `{"holder":"grpcurl"}`, "whirl.v1.AnimationService/AcquireLease")
	var l struct{ LeaseId string }
	if !ok || json.Unmarshal([]byte(out), &l) != nil {
		t.Fatalf("acquire: %s", out)
	}
	req := `{"lease_id":"` + l.LeaseId + `","generate":{"seed":"42"},"video":{"width":320,"height":240,"fps":30,"frames":60,"style":"STYLE_WHEELS"}}`
	cmd := exec.Command(bins.grpcurl, "-plaintext", "-max-time", "120", "-d", req, p.addr, "whirl.v1.AnimationService/RenderAnimation")
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("grpcurl RenderAnimation: %v\n%s", err, raw)
	}
	// grpcurl prints one JSON object per message; bytes fields are base64,
	// which encoding/json decodes into []byte.
	type event struct {
		Header *struct{ MimeType string }
		Chunk  *struct {
			Offset string
			Data   []byte
		}
		Trailer *struct {
			TotalBytes string
			Sha256     string
		}
	}
	var (
		video   []byte
		mime    string
		trailer *struct {
			TotalBytes string
			Sha256     string
		}
	)
	dec := json.NewDecoder(bytes.NewReader(raw))
	for dec.More() {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("decoding grpcurl output: %v", err)
		}
		switch {
		case ev.Header != nil:
			mime = ev.Header.MimeType
		case ev.Chunk != nil:
			if ev.Chunk.Offset != "" && ev.Chunk.Offset != strconv.Itoa(len(video)) || ev.Chunk.Offset == "" && len(video) != 0 {
				t.Fatalf("chunk offset %q, have %d bytes", ev.Chunk.Offset, len(video))
			}
			video = append(video, ev.Chunk.Data...)
		case ev.Trailer != nil:
			trailer = ev.Trailer
		}
	}
	sum := sha256.Sum256(video)
	if trailer == nil || trailer.TotalBytes != strconv.Itoa(len(video)) || trailer.Sha256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("trailer %+v does not match %d decoded bytes", trailer, len(video))
	}
	if !strings.HasPrefix(mime, `video/mp4; codecs="avc1.`) {
		t.Fatalf("mime type %q", mime)
	}
	path := filepath.Join(t.TempDir(), "grpcurl.mp4")
	if err := os.WriteFile(path, video, 0o600); err != nil {
		t.Fatal(err)
	}
	mp4check.ProbeFile(t, path, mp4check.Expect{Width: 320, Height: 240, FPS: 30, Frames: 60, Duration: 2 * time.Second})
}
