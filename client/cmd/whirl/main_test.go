package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// whirlBin is the CLI binary, built once by TestMain; serverAddr is the
// in-process server every test talks to unless it starts its own.
var (
	whirlBin   string
	serverAddr string
)

const token = "cli-test-token"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "whirl-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	whirlBin = filepath.Join(dir, "whirl")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "go not found:", err)
		return 1
	}
	if out, err := exec.Command(goTool, "build", "-o", whirlBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building whirl: %v\n%s", err, out)
		return 1
	}

	leases := lease.NewMemory(lease.Config{Capacity: 5})
	srv, err := testserver.Serve(service.Config{Leases: leases, AdminToken: token, Cache: cache.Open(filepath.Join(dir, "cache"), 1<<30, nil, nil)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	serverAddr = srv.Addr

	code := m.Run()

	srv.Stop()
	_ = leases.Close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// whirl runs the CLI against serverAddr (WHIRL_SERVER) with the admin token
// unset; env entries are added to the environment.
func whirl(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, whirlBin, args...)
	cmd.Env = append(cleanEnv(), "WHIRL_SERVER="+serverAddr)
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("whirl %q: %v", args, err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WHIRL_") {
			env = append(env, kv)
		}
	}
	return env
}

// admin is the environment of an operator.
func admin() []string { return []string{"WHIRL_TOKEN=" + token} }

func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

func liveLeases(t *testing.T) int {
	t.Helper()
	return listLeases(t).Count
}

// pool is the part of `whirl leases --json` the tests read.
type pool struct {
	Count  int
	Leases []struct{ Rendering bool }
}

func listLeases(t *testing.T) pool {
	t.Helper()
	var p pool
	r := whirl(t, admin(), "leases", "--json").ok(t)
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("leases --json: %v: %s", err, r.stdout)
	}
	return p
}

func TestCurve(t *testing.T) {
	r := whirl(t, nil, "curve", "--seed", "42").ok(t)
	if !strings.HasPrefix(r.stdout, "seed 42: ") || !strings.Contains(r.stdout, "SHAPE") || r.stderr != "" {
		t.Errorf("curve:\n%s\nstderr: %s", r.stdout, r.stderr)
	}
	if again := whirl(t, nil, "curve", "--seed", "42").ok(t); again.stdout != r.stdout {
		t.Errorf("same seed, different output:\n%s\n%s", r.stdout, again.stdout)
	}
	j := whirl(t, nil, "--json", "curve", "--seed", "42", "--wheels", "4", "--shape", "square").ok(t)
	var out struct {
		Seed  uint64
		Curve struct {
			Summary struct {
				Wheels int
				Shapes []string
			}
		}
	}
	if err := json.Unmarshal([]byte(j.stdout), &out); err != nil {
		t.Fatalf("%v: %s", err, j.stdout)
	}
	if out.Seed != 42 || out.Curve.Summary.Wheels != 4 || len(out.Curve.Summary.Shapes) != 4 || out.Curve.Summary.Shapes[3] != "SHAPE_SQUARE" {
		t.Errorf("curve --json: %+v", out)
	}
}

func TestStill(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "curve.png")
	r := whirl(t, nil, "still", "--seed", "42", "--size", "160", "--style", "trace", "--frame", "3", "--frames", "10", "--shape", "triangle", "-o", path).ok(t)
	if !strings.HasPrefix(r.stdout, "wrote "+path+": 160×160 PNG") || !strings.Contains(r.stdout, "triangle") {
		t.Errorf("still: %s", r.stdout)
	}
	checkPNG(t, path, 160, 160)

	path = filepath.Join(dir, "wide.png")
	j := whirl(t, nil, "still", "--seed", "7", "--width", "200", "--height", "100", "-o", path, "--json").ok(t)
	var out struct {
		Output        string
		Width, Height int
		Bytes         int
	}
	if err := json.Unmarshal([]byte(j.stdout), &out); err != nil || out.Width != 200 || out.Height != 100 || out.Output != path {
		t.Errorf("still --json: %v %+v", err, out)
	}
	checkPNG(t, path, 200, 100)
}

func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != w || cfg.Height != h {
		t.Errorf("%s: %v %dx%d, want %dx%d PNG", path, err, cfg.Width, cfg.Height, w, h)
	}
}

func TestRender(t *testing.T) {
	path := filepath.Join(t.TempDir(), "curve.mp4")
	r := whirl(t, nil, "render", "--seed", "42", "--style", "wheels", "--frames", "30", "--fps", "30", "--width", "160", "--height", "120", "-o", path).ok(t)
	if r.stderr != "" {
		t.Errorf("stderr is not a terminal, yet: %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "verified") {
		t.Errorf("render: %s", r.stdout)
	}
	mp4check.ProbeFile(t, path, mp4check.Expect{Width: 160, Height: 120, FPS: 30, Frames: 30})

	j := whirl(t, nil, "render", "--seed", "42", "--frames", "30", "--size", "160", "--style", "trace", "-o", path, "--json").ok(t)
	var out struct {
		Bytes    int64
		SHA256   string
		Frames   int
		MIMEType string
		VideoID  string
		Source   string
	}
	if err := json.Unmarshal([]byte(j.stdout), &out); err != nil {
		t.Fatalf("%v: %s", err, j.stdout)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if out.SHA256 != hex.EncodeToString(sum[:]) || out.Bytes != int64(len(data)) || out.Frames != 30 || !strings.HasPrefix(out.MIMEType, "video/mp4") {
		t.Errorf("render --json %+v does not describe the %d-byte file", out, len(data))
	}
	// The package's server caches finished videos, so a repeated run
	// (go test -count) finds this one cached.
	if len(out.VideoID) != 64 || out.Source != "rendered" && out.Source != "cached" {
		t.Errorf("render --json: videoId %q source %q, want an id and rendered (or cached)", out.VideoID, out.Source)
	}
	if n := liveLeases(t); n != 0 {
		t.Errorf("%d leases live after renders", n)
	}
}

func TestRenderToStdout(t *testing.T) {
	r := whirl(t, nil, "render", "--seed", "3", "--frames", "10", "--size", "160", "-o", "-").ok(t)
	if !bytes.Contains([]byte(r.stdout[:min(len(r.stdout), 64)]), []byte("ftyp")) || r.stderr != "" {
		t.Errorf("render -o -: %d bytes on stdout starting %q, stderr %q", len(r.stdout), r.stdout[:min(len(r.stdout), 16)], r.stderr)
	}
}

// TestFailedRenderLeavesNoFile: a refused render writes nothing at -o, not
// even a partial file.
func TestFailedRenderLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	r := whirl(t, nil, "render", "--seed", "1", "--size", "63", "--frames", "10", "-o", filepath.Join(dir, "bad.mp4"))
	if r.code != exitRefused || !strings.Contains(r.stderr, "video.width") {
		t.Errorf("odd size: exit %d, stderr %q", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

func TestLeaseCommands(t *testing.T) {
	r := whirl(t, nil, "lease", "acquire", "--holder", "cli-test").ok(t)
	id := strings.TrimSpace(r.stdout)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("lease acquire printed %q", r.stdout)
	}
	whirl(t, nil, "lease", "renew", id).ok(t)
	var l struct{ LeaseID, Handle, TTL string }
	j := whirl(t, nil, "lease", "renew", id, "--json").ok(t)
	if err := json.Unmarshal([]byte(j.stdout), &l); err != nil || l.LeaseID != id || l.TTL != "300s" {
		t.Errorf("renew --json: %v %+v", err, l)
	}

	table := whirl(t, admin(), "leases").ok(t)
	if !strings.Contains(table.stdout, "HANDLE") || !strings.Contains(table.stdout, l.Handle) || !strings.Contains(table.stdout, "cli-test") {
		t.Errorf("leases:\n%s", table.stdout)
	}
	// A lease rendered under is used, not released.
	path := filepath.Join(t.TempDir(), "v.mp4")
	whirl(t, nil, "render", "--seed", "5", "--frames", "5", "--size", "160", "--lease", id, "-o", path).ok(t)
	whirl(t, nil, "lease", "renew", id).ok(t)

	whirl(t, []string{"WHIRL_TOKEN=" + token}, "revoke", l.Handle).ok(t)
	if r := whirl(t, nil, "lease", "release", id); r.code != exitRefused || !strings.Contains(r.stderr, "NotFound") {
		t.Errorf("release after revoke: exit %d, %q", r.code, r.stderr)
	}

	// --keep-lease prints the kept lease; release it.
	k := whirl(t, nil, "render", "--seed", "5", "--frames", "5", "--size", "160", "--keep-lease", "-o", path, "--json").ok(t)
	var kept struct{ LeaseID string }
	if err := json.Unmarshal([]byte(k.stdout), &kept); err != nil || kept.LeaseID == "" {
		t.Fatalf("render --keep-lease --json: %v %s", err, k.stdout)
	}
	whirl(t, nil, "lease", "release", kept.LeaseID, "--json").ok(t)
	if n := liveLeases(t); n != 0 {
		t.Errorf("%d leases live", n)
	}
}

func TestAllLeasesTaken(t *testing.T) {
	var ids []string
	defer func() {
		for _, id := range ids {
			whirl(t, nil, "lease", "release", id)
		}
	}()
	for range 5 {
		ids = append(ids, strings.TrimSpace(whirl(t, nil, "lease", "acquire").ok(t).stdout))
	}
	r := whirl(t, nil, "lease", "acquire")
	if r.code != exitRefused || !strings.Contains(r.stderr, "--wait") {
		t.Errorf("sixth lease: exit %d, %q", r.code, r.stderr)
	}
	// The server's "lease: ..." is not repeated after "acquire lease:".
	if first, _, _ := strings.Cut(r.stderr, "\n"); !strings.HasPrefix(first, "whirl: acquire lease: ") || strings.Contains(first, "lease: lease:") {
		t.Errorf("sixth lease refused as %q", first)
	}
	r = whirl(t, nil, "render", "--seed", "1", "--frames", "5", "--size", "160", "--deadline", "1s", "-o", "x.mp4")
	if r.code != exitRefused || r.elapsed > 10*time.Second {
		t.Errorf("render with every lease taken: exit %d after %s, %q", r.code, r.elapsed, r.stderr)
	}
	r = whirl(t, nil, "lease", "acquire", "--wait", "--deadline", "300ms")
	if r.code != exitFailure || !strings.Contains(r.stderr, "DeadlineExceeded") {
		t.Errorf("--wait past its deadline: exit %d, %q", r.code, r.stderr)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		code int
	}{
		{"help", nil, []string{"help"}, exitOK},
		{"command help", nil, []string{"render", "-h"}, exitOK},
		{"help for a command", nil, []string{"help", "still"}, exitOK},
		{"lease help", nil, []string{"lease", "--help"}, exitOK},
		{"no command", nil, nil, exitUsage},
		{"unknown command", nil, []string{"paint"}, exitUsage},
		{"unknown flag", nil, []string{"curve", "--colour", "red"}, exitUsage},
		{"unknown global flag", nil, []string{"--verbose", "curve"}, exitUsage},
		{"bad number", nil, []string{"render", "--frames", "abc", "-o", "x.mp4"}, exitUsage},
		{"bad seed", nil, []string{"curve", "--seed", "-1"}, exitUsage},
		{"bad style", nil, []string{"still", "--style", "bogus", "-o", "x.png"}, exitUsage},
		{"bad shape", nil, []string{"still", "--shape", "hexagon", "-o", "x.png"}, exitUsage},
		{"no output", nil, []string{"still", "--seed", "1"}, exitUsage},
		{"json and stdout", nil, []string{"render", "--json", "-o", "-"}, exitUsage},
		{"stray argument", nil, []string{"curve", "extra"}, exitUsage},
		{"revoke without handle", nil, []string{"revoke"}, exitUsage},
		{"lease without subcommand", nil, []string{"lease"}, exitUsage},
		{"unknown lease subcommand", nil, []string{"lease", "steal"}, exitUsage},
		{"wait and retry", nil, []string{"lease", "acquire", "--wait", "--retry"}, exitUsage},
		{"invalid argument", nil, []string{"still", "--size", "5000", "-o", "x.png"}, exitRefused},
		{"invalid lease id", nil, []string{"lease", "renew", "xyz"}, exitRefused},
		{"unknown lease", nil, []string{"lease", "renew", "0123456789abcdef0123456789abcdef"}, exitRefused},
		{"no token", nil, []string{"leases"}, exitRefused},
		{"wrong token", []string{"WHIRL_TOKEN=nope"}, []string{"leases"}, exitRefused},
		{"token flag", nil, []string{"leases", "--token", token}, exitOK},
		{"unknown handle", admin(), []string{"revoke", "0123456789abcdef"}, exitRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := whirl(t, tt.env, tt.args...)
			if r.code != tt.code {
				t.Errorf("whirl %q: exit %d, want %d\nstdout: %s\nstderr: %s", tt.args, r.code, tt.code, r.stdout, r.stderr)
			}
			if tt.code == exitRefused && !strings.HasPrefix(r.stderr, "whirl: ") {
				t.Errorf("refusal message %q", r.stderr)
			}
		})
	}
}

func TestUnreachableServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	for _, args := range [][]string{{"--server", addr, "curve", "--seed", "1"}, {"render", "--server", addr, "-o", "x.mp4"}, {"lease", "acquire", "--server", addr}} {
		r := whirl(t, nil, args...)
		want := "whirl: cannot reach server at " + addr + ": connection refused\n"
		if r.code != exitFailure || r.stderr != want || r.stdout != "" {
			t.Errorf("whirl %q: exit %d, stderr %q; want exit 1 and %q", args, r.code, r.stderr, want)
		}
		if r.elapsed > 3*time.Second {
			t.Errorf("whirl %q took %s to give up", args, r.elapsed)
		}
	}
	// WHIRL_SERVER is read too.
	r := whirl(t, []string{"WHIRL_SERVER=" + addr}, "curve")
	if r.code != exitFailure || !strings.Contains(r.stderr, addr) {
		t.Errorf("WHIRL_SERVER: exit %d, %q", r.code, r.stderr)
	}
}

// TestInterrupt: SIGINT mid-render exits 130, leaves no file and frees the
// lease.
func TestInterrupt(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(whirlBin, "render", "--seed", "9", "--frames", "3600", "--size", "320", "-o", filepath.Join(dir, "long.mp4"))
	cmd.Env = append(cleanEnv(), "WHIRL_SERVER="+serverAddr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the render runs under its lease: the server has pinned it.
	// Each look runs the CLI, which paces the polling.
	rendering := func() bool {
		p := listLeases(t)
		return len(p.Leases) == 1 && p.Leases[0].Rendering
	}
	for deadline := time.Now().Add(20 * time.Second); !rendering(); {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the render never started; stderr %q", stderr.String())
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitInterrupted || stderr.String() != "whirl: interrupted\n" {
		t.Errorf("after SIGINT: %v, stderr %q", err, stderr.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
	if n := liveLeases(t); n != 0 {
		t.Errorf("%d leases live after an interrupted render", n)
	}
}

// TestRenderResumes: the connection breaks half-way; render reconnects,
// resumes, says where, and writes the same file as an unbroken render;
// --no-resume fails instead.
func TestRenderResumes(t *testing.T) {
	dir := t.TempDir()
	args := func(out string) []string {
		return []string{"render", "--seed", "5", "--frames", "60", "--size", "160", "-o", filepath.Join(dir, out)}
	}
	whirl(t, nil, args("solo.mp4")...).ok(t)
	solo, err := os.ReadFile(filepath.Join(dir, "solo.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testserver.StartCutProxy(t, serverAddr, int64(len(solo)/2))
	r := whirl(t, []string{"WHIRL_SERVER=" + proxy.Addr()}, append(args("resumed.mp4"), "--json")...).ok(t)
	if !regexp.MustCompile(`^resumed at \d+ % on retry 1\n$`).MatchString(r.stderr) {
		t.Errorf("stderr %q, want one \"resumed at N %% on retry 1\" line", r.stderr)
	}
	var out struct{ ResumedAt []int64 }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.ResumedAt) != 1 {
		t.Errorf("render --json after a resume: %v, %s", err, r.stdout)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "resumed.mp4")); err != nil || !bytes.Equal(got, solo) {
		t.Errorf("the resumed file differs from the unbroken one (%v)", err)
	}
	proxy = testserver.StartCutProxy(t, serverAddr, int64(len(solo)/2))
	if r := whirl(t, []string{"WHIRL_SERVER=" + proxy.Addr()}, append(args("failed.mp4"), "--no-resume")...); r.code != 1 {
		t.Errorf("--no-resume through a broken connection: exit %d, want 1; stderr %s", r.code, r.stderr)
	}
}
