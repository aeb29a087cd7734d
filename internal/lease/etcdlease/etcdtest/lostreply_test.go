package etcdtest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/lease"
)

// TestEndWhoseRevokeReplyIsLost: the reply to the revoke that ends a
// lease is lost (the etcd member that served it died, say), so the etcd
// client retries it and the retry finds the etcd lease gone. The release
// or revoke took effect all the same and must say so, not NOT_FOUND, and
// the slot is free.
func TestEndWhoseRevokeReplyIsLost(t *testing.T) {
	endpoint := startEtcd(t)
	for _, tc := range []struct {
		name string
		end  func(ctx context.Context, r lease.Registry, l lease.Lease) error
	}{
		{"release", func(ctx context.Context, r lease.Registry, l lease.Lease) error { return r.Release(ctx, l.Token) }},
		{"revoke", func(ctx context.Context, r lease.Registry, l lease.Lease) error { return r.Revoke(ctx, l.Handle) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lost atomic.Bool
			// Inside the etcd client's own retry interceptor: the first
			// LeaseRevoke reaches etcd and succeeds, and its caller is told
			// the connection failed, which the client retries.
			loseFirstRevokeReply := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				err := invoke(ctx, method, req, reply, cc, opts...)
				if method == "/etcdserverpb.Lease/LeaseRevoke" && err == nil && lost.CompareAndSwap(false, true) {
					return status.Error(codes.Unavailable, "reply lost")
				}
				return err
			}
			cli, err := clientv3.New(clientv3.Config{
				Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: silent,
				DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(loseFirstRevokeReply)},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cli.Close() })
			r := newRegistry(t, cli, lease.Config{Capacity: 1, TTL: 30 * time.Second}, uniquePrefix(t))
			ctx := t.Context()
			l, err := r.Acquire(ctx, lease.AcquireRequest{Holder: "lost-reply"})
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.end(ctx, r, l); err != nil {
				t.Errorf("%s answered %v though it ended the lease", tc.name, err)
			}
			if !lost.Load() {
				t.Fatal("no revoke reply was lost: the test proves nothing")
			}
			if _, err := r.Renew(ctx, l.Token); !errors.Is(err, lease.ErrNotFound) {
				t.Errorf("the ended lease renews: %v", err)
			}
			if _, err := r.Acquire(ctx, lease.AcquireRequest{Holder: "next"}); err != nil {
				t.Errorf("the slot is not free: %v", err)
			}
		})
	}
}
