package etcdtest

import (
	"testing"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/lease/leasetest"
)

// runSuite runs the shared behavioural suite against etcd at endpoint, each
// subtest on its own key prefix.
func runSuite(t *testing.T, endpoint string) {
	cli := newClient(t, endpoint)
	leasetest.Run(t, func(t *testing.T, cfg lease.Config) lease.Registry {
		r := newRegistry(t, cli, cfg, uniquePrefix(t))
		return r
	})
}

// TestSuiteEmbedded runs leasetest against an in-process etcd (the client's
// version).
func TestSuiteEmbedded(t *testing.T) {
	t.Parallel()
	runSuite(t, startEtcd(t))
}

// TestSuiteEtcd34 runs leasetest against Debian's standalone etcd 3.4
// server, the oldest server the registry supports.
func TestSuiteEtcd34(t *testing.T) {
	t.Parallel()
	runSuite(t, startBinaryEtcd(t))
}
