package robustness_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/robustness"
	"github.com/whirl-dev/whirl/internal/serverproc"
	"github.com/whirl-dev/whirl/internal/testetcd"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// binDir holds the server binary, built by the first scenario that runs.
var binDir string

// buildServer builds the server binary once, for the scenarios only (the
// unit tests of the model need none); WHIRL_ROBUSTNESS_SERVER names a
// prebuilt one instead (another build, to compare).
var buildServer = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv("WHIRL_ROBUSTNESS_SERVER"); bin != "" {
		return bin, nil
	}
	return serverproc.Build(context.Background(), binDir, os.Stderr)
})

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "whirl-robustness")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	adminToken = "robustness"
	clients    = 8
)

var video = robustness.Video{Width: 64, Height: 64, FPS: 30, MinFrames: 60, MaxFrames: 150}

// settings reads the run's length and seed from the environment.
func settings(t *testing.T) (time.Duration, uint64) {
	t.Helper()
	d := 45 * time.Second
	if v := os.Getenv("WHIRL_ROBUSTNESS_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("WHIRL_ROBUSTNESS_DURATION=%q: want a positive duration (%v)", v, err)
		}
	}
	seed := rand.Uint64() >> 1
	if v := os.Getenv("WHIRL_ROBUSTNESS_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("WHIRL_ROBUSTNESS_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (replay with WHIRL_ROBUSTNESS_SEED=%d), %v of traffic", seed, seed, d)
	return d, seed
}

// needFFmpeg skips without ffmpeg, unless WHIRL_REQUIRE_ETCD asks for the
// whole end-to-end set.
func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("WHIRL_REQUIRE_ETCD") != "" {
			t.Fatalf("ffmpeg not found (install with: apt-get install -y ffmpeg): %v", err)
		}
		t.Skip("ffmpeg not on PATH; scripts/test.sh installs it")
	}
}

// serverArgs are every replica's flags: a small pool with short leases, more
// render slots and encoders than leases so only the pool bounds renders.
func serverArgs(t *testing.T, p robustness.Params) []string {
	return []string{
		"--capacity", strconv.Itoa(p.Capacity), "--lease-ttl", p.TTL.String(), "--lease-max-age", p.MaxAge.String(),
		"--acquire-rate", "0", "--admin-token", adminToken, "--cache-dir", t.TempDir(),
		"--render-slots", "8", "--encode-parallelism", strconv.Itoa(p.Capacity + 1), "--render-workers", "1",
		"--shutdown-grace", "1s", "--log-level", "info", "--orphan-grace", p.OrphanGrace.String(), "--lease-queue-max", "4",
	}
}

// startReplicas starts n replicas with args plus each one's extra, logging
// to files; it returns them and their log files by name.
func startReplicas(t *testing.T, args []string, extra [][]string) ([]*robustness.Replica, map[string]string) {
	t.Helper()
	serverBin, err := buildServer()
	if err != nil {
		t.Fatalf("building the server: %v", err)
	}
	var replicas []*robustness.Replica
	logs := make(map[string]string)
	for i, ex := range extra {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("replica%d.log", i))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		r, err := robustness.StartReplica(t.Context(), i, serverBin, append(append([]string{}, args...), ex...), f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		replicas = append(replicas, r)
		logs[filepath.Base(path)] = path
	}
	return replicas, logs
}

// finish fails the test with the run's findings and writes the results
// folder it names.
func finish(t *testing.T, name string, p robustness.Params, rep *robustness.Report, logs map[string]string) {
	t.Helper()
	counts := make(map[string]int)
	for _, op := range rep.History {
		counts[string(op.Input.Kind)+"/"+string(op.Output.Result)]++
	}
	t.Logf("%d operations %v", len(rep.History), counts)
	t.Logf("%d samples, %.1f a second, %d gaps over 50 ms, the longest %v (at %.1fs); linearizability %s; running-renders gauge %q",
		len(rep.Samples), rep.SampleRate, rep.SlowGaps, rep.LongestGap, float64(rep.GapAt)/1e9, rep.Check, rep.Gauge)
	seen, most := 0, 0
	for _, s := range rep.Samples {
		n := 0
		for _, e := range s.Encoders {
			n += e
		}
		if n > 0 {
			seen++
		}
		most = max(most, n)
	}
	t.Logf("ffmpeg encoders counted in %d of %d samples, at most %d at once", seen, len(rep.Samples), most)
	for _, f := range rep.Faults {
		t.Logf("fault %s at %.1fs-%.1fs: %s %s", f.Name, float64(f.Start)/1e9, float64(f.End)/1e9, f.Detail, f.Err)
	}
	if len(rep.Violations) == 0 {
		return
	}
	dir := os.Getenv("WHIRL_ROBUSTNESS_RESULTS")
	if dir == "" {
		dir = os.TempDir()
	}
	out, err := robustness.WriteResults(dir, name, p, rep, logs)
	if err != nil {
		t.Errorf("writing the results: %v", err)
	}
	t.Fatalf("seed %d: %d violations (results in %s; replay with WHIRL_ROBUSTNESS_SEED=%d):\n%s",
		rep.Seed, len(rep.Violations), out, rep.Seed, strings.Join(rep.Violations, "\n"))
}

// TestRobustnessMemory: one replica on the memory store, SIGKILLed and
// restarted, its encoders killed, under random traffic.
func TestRobustnessMemory(t *testing.T) {
	needFFmpeg(t)
	duration, seed := settings(t)
	p := robustness.MemoryParams
	rec := robustness.NewRecorder()
	replicas, logs := startReplicas(t, serverArgs(t, p), [][]string{{"--lease-store", "memory"}})
	rep := robustness.Run(t.Context(), robustness.Scenario{
		Name: "memory", Seed: seed, Duration: duration, Clients: clients, Params: p,
		Replicas: replicas, Rec: rec, Token: adminToken, Video: video,
		Faults: []robustness.Fault{
			robustness.KillReplica(replicas, rec, clients),
			robustness.KillFFmpeg(replicas, "64x64"),
		},
		FaultInterval: 8 * time.Second, CheckTimeout: time.Minute,
	})
	finish(t, "memory", p, rep, logs)
}

// TestRobustnessEtcd: two replicas on a three-member etcd cluster; faults
// kill a replica, kill an etcd member, cut a replica off from etcd and kill
// encoders.
func TestRobustnessEtcd(t *testing.T) {
	needFFmpeg(t)
	cluster := testetcd.Start(t, 3)
	duration, seed := settings(t)
	p := robustness.EtcdParams
	rec := robustness.NewRecorder()
	// Each replica reaches each member through a proxy, so that a fault can
	// cut one replica off from etcd.
	proxies := make([][]*testserver.CutProxy, 2)
	extra := make([][]string, 2)
	for i := range proxies {
		var eps []string
		for _, ep := range cluster.Endpoints() {
			px := testserver.StartCutProxy(t, strings.TrimPrefix(ep, "http://"), -1)
			proxies[i] = append(proxies[i], px)
			eps = append(eps, "http://"+px.Addr())
		}
		extra[i] = []string{"--lease-store", "etcd", "--etcd-endpoints", strings.Join(eps, ","),
			"--etcd-prefix", "/whirl-robustness", "--etcd-timeout", "1s"}
	}
	replicas, logs := startReplicas(t, serverArgs(t, p), extra)
	rep := robustness.Run(t.Context(), robustness.Scenario{
		Name: "etcd", Seed: seed, Duration: duration, Clients: clients, Params: p,
		Replicas: replicas, Rec: rec, Token: adminToken, Video: video,
		Faults: []robustness.Fault{
			robustness.KillReplica(replicas, rec, clients),
			robustness.KillEtcdMember(cluster),
			robustness.CutEtcd(proxies, p.TTL),
			robustness.KillFFmpeg(replicas, "64x64"),
		},
		FaultInterval: 6 * time.Second, CheckTimeout: time.Minute,
	})
	finish(t, "etcd", p, rep, logs)
}
