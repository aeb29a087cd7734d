package main_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// The client examples in other languages (examples/python, examples/node),
// run against the server binary. scripts/test.sh installs their tools and
// sets WHIRL_REQUIRE_EXAMPLES, so there a missing tool fails the test
// instead of skipping it. WHIRL_PYTHON names the interpreter that has
// Debian's python3-grpcio and python3-protobuf (default python3).

// example is one runnable client example.
type example struct {
	name string
	dir  string   // working directory, relative to server/
	argv []string // the command, before the example's flags
}

func examples(t *testing.T) []example {
	t.Helper()
	python := cmp.Or(os.Getenv("WHIRL_PYTHON"), "python3")
	var missing []string
	if err := exec.Command(python, "-c", "import grpc, google.protobuf").Run(); err != nil {
		missing = append(missing, python+" with grpc and protobuf (apt-get install python3-grpcio python3-protobuf)")
	}
	tsx := filepath.Join("..", "examples", "node", "node_modules", ".bin", "tsx")
	if _, err := os.Stat(tsx); err != nil {
		missing = append(missing, tsx+" (cd examples/node && npm ci)")
	}
	if len(missing) > 0 {
		if os.Getenv("WHIRL_REQUIRE_EXAMPLES") != "" {
			t.Fatalf("missing: %s", strings.Join(missing, "; "))
		}
		t.Skipf("missing: %s", strings.Join(missing, "; "))
	}
	return []example{
		{"python", "../examples/python", []string{python, "render.py"}},
		{"node", "../examples/node", []string{"node_modules/.bin/tsx", "src/render.ts"}},
	}
}

// verified is the line an example prints once its file matched the trailer.
var verified = regexp.MustCompile(`: (\d+) bytes, sha256 ([0-9a-f]{64}) \(matches the trailer\)`)

// start runs the example to render seed as a 160×160, 45-frame MP4. wait
// ends it and returns the SHA-256 it verified against the stream's trailer,
// after checking that it is the file's and that ffprobe accepts the file, and
// what the example wrote to stderr.
func (e example) start(t *testing.T, addr string, seed int) (wait func() (sum, stderr string)) {
	t.Helper()
	out := filepath.Join(t.TempDir(), e.name+".mp4")
	cmd := exec.Command(e.argv[0], append(e.argv[1:], "--server", addr, "--seed", strconv.Itoa(seed), "--size", "160", "--frames", "45", "-o", out)...)
	cmd.Dir = e.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() (string, string) {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s example: %v\nstdout: %s\nstderr: %s", e.name, err, &stdout, &stderr)
		}
		m := verified.FindStringSubmatch(stdout.String())
		if m == nil {
			t.Fatalf("%s example printed no verified checksum: %q", e.name, &stdout)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != m[2] || m[1] != strconv.Itoa(len(data)) {
			t.Fatalf("%s example verified %s bytes with sha256 %s; the file has %d bytes with sha256 %x", e.name, m[1], m[2], len(data), sum)
		}
		mp4check.ProbeFile(t, out, mp4check.Expect{Width: 160, Height: 160, FPS: 30, Frames: 45})
		return m[2], stderr.String()
	}
}

// TestExamplesRender: each example writes an MP4 that ffprobe accepts, and
// the SHA-256 it verified against the stream's trailer is the file's and the
// one the Go client (which checks the trailer itself) gets for the same
// request.
func TestExamplesRender(t *testing.T) {
	exs := examples(t)
	p := startServer(t)
	c, err := client.Dial(t.Context(), p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, e := range exs {
		t.Run(e.name, func(t *testing.T) {
			sum, _ := e.start(t, p.addr, 40+i)()
			var video bytes.Buffer
			res, err := c.Render(t.Context(), &whirlv1.RenderAnimationRequest{
				Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: uint64(40 + i)}},
				Video:  &whirlv1.VideoOptions{Width: 160, Height: 160, Frames: 45, Style: whirlv1.Style_STYLE_WHEELS},
			}, &video)
			if err != nil {
				t.Fatal(err)
			}
			if res.SHA256 != sum {
				t.Fatalf("%s example verified sha256 %s, the Go client got %s for the same request", e.name, sum, res.SHA256)
			}
			t.Logf("%s example: MP4 accepted by ffprobe, sha256 %s verified against the trailer", e.name, sum)
		})
	}
}

// nodeRetried is the Node example's line when it waits out a refusal, which
// it tells by the refusal's ErrorInfo reason.
var nodeRetried = regexp.MustCompile(`(?m)^ResourceExhausted \(LEASE_CAPACITY\): .*; asking again in \d+ ms$`)

// TestExamplesReportReason: a request the server refuses (an odd size) ends
// each example with the status code, the ErrorInfo reason it read, and the
// advice it gives for that reason.
func TestExamplesReportReason(t *testing.T) {
	exs := examples(t)
	p := startServer(t)
	for _, e := range exs {
		t.Run(e.name, func(t *testing.T) {
			cmd := exec.Command(e.argv[0], append(e.argv[1:], "--server", p.addr, "--size", "161", "-o", filepath.Join(t.TempDir(), "odd.mp4"))...)
			cmd.Dir = e.dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err == nil {
				t.Fatalf("%s example rendered an odd size", e.name)
			}
			want := regexp.MustCompile(`(?m)^whirl: (INVALID_ARGUMENT|InvalidArgument) \(BAD_REQUEST\): .*\n^whirl: check --size`)
			if !want.MatchString(stderr.String()) {
				t.Fatalf("%s example's error does not name the reason and its advice: %q", e.name, &stderr)
			}
		})
	}
}

// TestExamplesRetryRefusal: with capacity 1 and the only lease held, each
// client is refused (the server logs the RESOURCE_EXHAUSTED) and gets a
// lease once the held one is released: the Python example and a plain
// grpc-go client through the service config alone (neither has retry code
// for this), the Node example through its own retry on the refusal's
// RetryInfo.
func TestExamplesRetryRefusal(t *testing.T) {
	exs := examples(t)
	p := startServer(t, "--capacity", "1")
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := whirlv1.NewAnimationServiceClient(conn)
	goClient := func(t *testing.T) (wait func() (string, string)) {
		configured, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultServiceConfig(whirlv1.ServiceConfig()))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			configuredAPI := whirlv1.NewAnimationServiceClient(configured)
			l, err := configuredAPI.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "grpc-go"})
			if err == nil {
				_, err = configuredAPI.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()})
			}
			done <- err
		}()
		return func() (string, string) {
			defer configured.Close()
			if err := <-done; err != nil {
				t.Fatalf("grpc-go client with the service config: %v", err)
			}
			return "", ""
		}
	}
	for _, c := range []struct {
		name  string
		start func(*testing.T) (wait func() (string, string))
	}{
		{"python", func(t *testing.T) func() (string, string) { return exs[0].start(t, p.addr, 50) }},
		{"grpc-go", goClient},
		{"node", func(t *testing.T) func() (string, string) { return exs[1].start(t, p.addr, 51) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			held, err := api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: "held"})
			if err != nil {
				t.Fatal(err)
			}
			release := func() error {
				_, err := api.ReleaseLease(context.Background(), &whirlv1.ReleaseLeaseRequest{LeaseId: held.GetLeaseId()})
				return err
			}
			t.Cleanup(func() { _ = release() }) // when the test fails first; NOT_FOUND otherwise
			before := p.refusals()
			wait := c.start(t)
			for deadline := time.Now().Add(30 * time.Second); p.refusals() == before; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no AcquireLease refused; server logs:\n%s", p.logs)
				}
			}
			if err := release(); err != nil {
				t.Fatal(err)
			}
			sum, stderr := wait()
			if c.name == "node" && !nodeRetried.MatchString(stderr) {
				t.Errorf("node example did not report its retry: %q", stderr)
			}
			msg := c.name + ": refused while the only lease was held, got a lease once it was released"
			if sum != "" {
				msg += "; MP4 accepted by ffprobe, sha256 " + sum + " verified against the trailer"
			}
			t.Log(msg)
		})
	}
}

// refusals counts the AcquireLease calls the server logged as refused.
func (p *process) refusals() int {
	n := 0
	for _, line := range strings.Split(p.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "finished call" &&
			rec["grpc.method"] == "AcquireLease" && rec["grpc.code"] == "ResourceExhausted" {
			n++
		}
	}
	return n
}
