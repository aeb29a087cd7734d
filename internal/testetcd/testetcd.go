// Package testetcd runs the standalone etcd binary (Debian's etcd-server
// package, or whatever `etcd` is on PATH) as child processes on loopback
// ports for the end-to-end tests of whirl's binary: one member, or a
// cluster whose members can be killed and restarted from their data.
//
// Tests skip when etcd is missing, unless WHIRL_REQUIRE_ETCD is set (as
// scripts/test.sh does): then they fail.
package testetcd

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// healthTimeout bounds the wait for a member's /health.
const healthTimeout = 20 * time.Second

// Binary returns the etcd binary's path, skipping t when there is none
// (failing it instead when WHIRL_REQUIRE_ETCD is set).
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("WHIRL_REQUIRE_ETCD") != "" {
			t.Fatalf("etcd binary not found (install with: apt-get install -y etcd-server): %v", err)
		}
		t.Skip("etcd binary not on PATH; scripts/test.sh installs it")
	}
	return bin
}

// Member is one etcd process; Stop and Start take it down and bring it
// back on the same ports and data directory.
type Member struct {
	// Name is the member's name in the cluster.
	Name string
	// Endpoint is the client URL (http://127.0.0.1:port).
	Endpoint string
	peerURL  string
	args     []string
	bin      string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Cluster is a set of members that form one etcd cluster.
type Cluster struct {
	Members []*Member
}

// Start starts an n-member cluster and waits until every member is
// healthy; it stops with the test. The ports are picked free and then
// released, so another process may take one first: then the whole cluster
// starts again on new ports (three attempts).
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	var err error
	for range 3 {
		c := newCluster(t, bin, n)
		t.Cleanup(func() {
			for _, m := range c.Members {
				m.Stop()
			}
		})
		if err = c.start(); err == nil {
			return c
		}
		for _, m := range c.Members {
			m.Stop()
		}
	}
	t.Fatal(err)
	return nil
}

// newCluster describes n members on fresh loopback ports.
func newCluster(t testing.TB, bin string, n int) *Cluster {
	dir := t.TempDir()
	c := &Cluster{}
	var initial []string
	for i := range n {
		m := &Member{
			Name:     fmt.Sprintf("m%d", i),
			Endpoint: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			peerURL:  fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			bin:      bin,
		}
		initial = append(initial, m.Name+"="+m.peerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name, "--data-dir", filepath.Join(dir, m.Name),
			"--listen-client-urls", m.Endpoint, "--advertise-client-urls", m.Endpoint,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "whirl-test", "--log-level", "error",
		}
	}
	return c
}

// start starts every member, then waits for each: members of a new
// cluster wait for each other.
func (c *Cluster) start() error {
	for _, m := range c.Members {
		if err := m.spawn(); err != nil {
			return err
		}
	}
	for _, m := range c.Members {
		if err := m.WaitHealthy(healthTimeout); err != nil {
			return err
		}
	}
	return nil
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.Endpoint)
	}
	return eps
}

// spawn starts the member's process.
func (m *Member) spawn() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return nil
	}
	cmd := exec.Command(m.bin, m.args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd member %s: %w", m.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited
	return nil
}

// Start starts a stopped member again and waits until it is healthy (which
// needs a quorum of members up).
func (m *Member) Start() error {
	if err := m.spawn(); err != nil {
		return err
	}
	return m.WaitHealthy(healthTimeout)
}

// Stop kills the member (SIGKILL: a crash, not a graceful leave) and reaps
// it; its data stays for Start.
func (m *Member) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		_ = m.cmd.Process.Kill()
		<-m.exited
		m.cmd = nil
	}
}

// WaitHealthy polls the member's /health until it reports true; it fails
// at once if the member has exited (a port taken, say).
func (m *Member) WaitHealthy(timeout time.Duration) error {
	m.mu.Lock()
	exited := m.exited
	m.mu.Unlock()
	deadline := time.Now().Add(timeout)
	client := http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(m.Endpoint + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"true"`) {
				return nil
			}
			err = fmt.Errorf("/health: %s", body)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd member %s at %s not healthy after %v: %w", m.Name, m.Endpoint, timeout, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("etcd member %s at %s exited: %w", m.Name, m.Endpoint, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
