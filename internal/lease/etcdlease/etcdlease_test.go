package etcdlease

// Tests that need no etcd. The behaviour against a real etcd is tested in
// the nested module ./etcdtest (cd etcdtest && go test -race ./...).

import (
	"context"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
)

func TestRoundTTL(t *testing.T) {
	for _, c := range []struct{ in, want time.Duration }{
		{0, 2 * time.Second},
		{time.Second, 2 * time.Second},
		{2 * time.Second, 2 * time.Second},
		{2500 * time.Millisecond, 3 * time.Second},
		{5 * time.Minute, 5 * time.Minute},
		{5*time.Minute + time.Nanosecond, 5*time.Minute + time.Second},
	} {
		if got := roundTTL(c.in); got != c.want {
			t.Errorf("roundTTL(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := ttlSeconds(2500 * time.Millisecond); got != 3 {
		t.Errorf("ttlSeconds(2.5s) = %d, want 3", got)
	}
}

func TestTokensAndHandles(t *testing.T) {
	tok := lease.NewToken()
	h := hashToken(tok)
	if len(h) != 64 || h == tok || hashToken(tok) != h {
		t.Fatalf("hashToken(%q) = %q", tok, h)
	}
}

// TestChainNesting checks the shape of the admission transaction: one
// level per slot, each guarded by CreateRevision == 0, the next slot in Else.
func TestChainNesting(t *testing.T) {
	r := &Registry{prefix: "/p"}
	idx := []int{2, 0, 1}
	op := r.chain(idx, func(i int) []clientv3.Op {
		return []clientv3.Op{clientv3.OpPut(r.slotKey(i), "v")}
	})
	for depth, i := range idx {
		if !op.IsTxn() {
			t.Fatalf("level %d is not a transaction", depth)
		}
		cmps, thenOps, elseOps := op.Txn()
		if len(cmps) != 1 || string(cmps[0].KeyBytes()) != r.slotKey(i) || cmps[0].GetCompare().Target != pb.Compare_CREATE || cmps[0].GetCompare().Result != pb.Compare_EQUAL || cmps[0].GetCompare().GetCreateRevision() != 0 {
			t.Fatalf("level %d compares %+v, want CreateRevision(%s)", depth, cmps, r.slotKey(i))
		}
		if len(thenOps) != 1 || string(thenOps[0].KeyBytes()) != r.slotKey(i) {
			t.Fatalf("level %d puts %+v", depth, thenOps)
		}
		if depth == len(idx)-1 {
			if len(elseOps) != 0 {
				t.Fatalf("last level has an else branch")
			}
			break
		}
		if len(elseOps) != 1 {
			t.Fatalf("level %d has %d else ops, want the next level", depth, len(elseOps))
		}
		op = elseOps[0]
	}
}

func TestNewRejectsBadArguments(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, nil, lease.Config{}, "/p"); err == nil {
		t.Error("New with a nil client succeeded")
	}
	cli := &clientv3.Client{}
	if _, err := New(ctx, cli, lease.Config{}, "/"); err == nil {
		t.Error("New with an empty prefix succeeded")
	}
	if _, err := New(ctx, cli, lease.Config{Capacity: -1}, "/p"); err == nil {
		t.Error("New with a negative capacity succeeded")
	}
}
