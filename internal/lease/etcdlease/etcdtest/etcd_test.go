package etcdtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/lease/etcdlease"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Started by package init of the etcd server and gRPC packages and
		// never stopped by design (process-wide caches, logging sinks).
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("go.etcd.io/etcd/pkg/v3/schedule.(*fifo).run"),
		// Keep-alive connections of etcd's member-to-member HTTP transport
		// (rafthttp) in the three-member cluster test, which embed.Close
		// does not drain. The code under test speaks gRPC only, so no
		// net/http goroutine can be its leak.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
	)
}

// silent is a logger for etcd servers and clients in tests.
var silent = zap.NewNop()

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}

// freePort returns a loopback port that is free now, for etcd members that
// must know each other's URLs before they start. It lies below the kernel's
// ephemeral range, so that while a cluster member is stopped no other
// process's connection or listen on port 0 is given its port and its
// restart finds it taken (seen on a busy machine with port-0 picks).
func freePort(t *testing.T) int {
	t.Helper()
	low := 32768 // Linux's default start of the ephemeral range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const span = 10000
	for range 100 {
		port := max(low-span, 1024) + rand.IntN(span)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken: try another
		}
		_ = l.Close()
		return port
	}
	t.Fatalf("no free loopback port in the %d below %d", span, low)
	return 0
}

// startEtcd starts a one-member etcd in-process on loopback port 0 and
// returns its client URL. It is stopped at the end of the test.
func startEtcd(t testing.TB) string {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "solo"
	cfg.Dir = t.TempDir()
	cfg.ListenClientUrls = []url.URL{mustURL("http://127.0.0.1:0")}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.ListenPeerUrls = []url.URL{mustURL("http://127.0.0.1:0")}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(silent)
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready after 30s")
	}
	return "http://" + e.Clients[0].Addr().String()
}

// newClient dials endpoints; closed at the end of the test.
func newClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      silent,
	})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

var prefixSeq atomic.Int64

// uniquePrefix gives each registry pool its own keys on a shared etcd.
func uniquePrefix(t testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return fmt.Sprintf("/whirl-test/%s-%d", name, prefixSeq.Add(1))
}

// newRegistry builds a Registry and closes it at the end of the test.
func newRegistry(t testing.TB, cli *clientv3.Client, cfg lease.Config, prefix string, opts ...etcdlease.Option) *etcdlease.Registry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := etcdlease.New(ctx, cli, cfg, prefix, opts...)
	if err != nil {
		t.Fatalf("etcdlease.New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// ---- a three-member in-process cluster ----

type member struct {
	cfg *embed.Config
	e   *embed.Etcd
}

type cluster struct {
	t       *testing.T
	members []*member
}

// startCluster starts n members in-process on loopback ports.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var initial []string
	for i := range n {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(t.TempDir(), cfg.Name)
		cfg.ListenClientUrls = []url.URL{mustURL(fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))}
		cfg.AdvertiseClientUrls = cfg.ListenClientUrls
		cfg.ListenPeerUrls = []url.URL{mustURL(fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))}
		cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
		cfg.InitialClusterToken = "whirl-test-" + t.Name()
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(silent)
		cfg.UnsafeNoFsync = true
		initial = append(initial, fmt.Sprintf("%s=%s", cfg.Name, cfg.AdvertisePeerUrls[0].String()))
		c.members = append(c.members, &member{cfg: cfg})
	}
	for _, m := range c.members {
		m.cfg.InitialCluster = strings.Join(initial, ",")
	}
	// Members of a new cluster wait for each other: start them together.
	errc := make(chan error, n)
	for _, m := range c.members {
		go func() {
			e, err := embed.StartEtcd(m.cfg)
			m.e = e
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatalf("start member: %v", err)
		}
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			if m.e != nil {
				m.e.Close()
			}
		}
	})
	for _, m := range c.members {
		select {
		case <-m.e.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			t.Fatal("cluster not ready after 30s")
		}
	}
	return c
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.cfg.AdvertiseClientUrls[0].String())
	}
	return eps
}

// stop stops member i (its data stays for restart).
func (c *cluster) stop(i int) {
	c.members[i].e.Close()
	c.members[i].e = nil
}

// restart starts a stopped member again from its data directory. It does
// not wait for ReadyNotify: a member is only ready once there is quorum.
func (c *cluster) restart(i int) {
	c.t.Helper()
	m := c.members[i]
	m.cfg.ClusterState = embed.ClusterStateFlagExisting // ignored with a data dir, but say so
	e, err := embed.StartEtcd(m.cfg)
	if err != nil {
		c.t.Fatalf("restart member %d: %v", i, err)
	}
	m.e = e
}

// leader returns the index of the current leader, or -1.
func (c *cluster) leader() int {
	for i, m := range c.members {
		if m.e != nil && m.e.Server.Leader() == m.e.Server.MemberID() {
			return i
		}
	}
	return -1
}

// ---- the standalone Debian etcd 3.4 binary ----

const etcdBinary = "/usr/bin/etcd"

// startBinaryEtcd runs /usr/bin/etcd as a child process on loopback ports
// in a temp dir and returns its client URL; skips if the binary is absent.
func startBinaryEtcd(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(etcdBinary); err != nil {
		t.Skipf("%s not installed: %v", etcdBinary, err)
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, etcdBinary,
		"--name", "bin",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "bin="+peerURL,
		"--logger", "zap",
		"--log-level", "error",
	)
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", etcdBinary, err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(waited) }()
	t.Cleanup(func() {
		cancel()
		<-waited
	})
	// Wait until it answers.
	cli := newClient(t, clientURL)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			break
		}
		select {
		case <-waited:
			out, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
			t.Fatalf("%s exited: %s", etcdBinary, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not answering after 30s: %v", etcdBinary, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return clientURL
}
