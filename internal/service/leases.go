package service

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whirl-dev/whirl/internal/lease"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Leases is the lease registry as the service uses it.
type Leases interface {
	Acquire(ctx context.Context, req lease.AcquireRequest) (lease.Lease, error)
	Renew(ctx context.Context, token string) (lease.Lease, error)
	Release(ctx context.Context, token string) error
	Revoke(ctx context.Context, handle string) error
	Pin(ctx context.Context, token string) (*lease.Pin, error)
	List(ctx context.Context) (lease.Snapshot, error)
}

// AcquireLease grants, renews or (with wait) queues for a lease.
func (s *Animation) AcquireLease(ctx context.Context, req *whirlv1.AcquireLeaseRequest) (*whirlv1.Lease, error) {
	var v violations
	v.holder("holder", req.GetHolder())
	v.leaseID("lease_id", req.GetLeaseId(), false)
	if id := req.GetRequestId(); id != "" && !lease.ValidRequestID(id) {
		v.add("request_id", fmt.Sprintf("must be 1-%d of A-Z, a-z, 0-9, '.', '_' and '-' (a UUID, say)", lease.MaxRequestIDBytes))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	start := time.Now()
	l, err := s.acquireLease(ctx, lease.AcquireRequest{
		Holder: req.GetHolder(), Token: req.GetLeaseId(), Wait: req.GetWait(), RequestID: req.GetRequestId(),
	})
	if err != nil {
		return nil, leaseStatus(ctx, err)
	}
	if req.GetWait() {
		s.observer.LeaseWaited(time.Since(start))
	}
	return leaseProto(l), nil
}

// RenewLease pushes a lease's expiry out.
func (s *Animation) RenewLease(ctx context.Context, req *whirlv1.RenewLeaseRequest) (*whirlv1.Lease, error) {
	var v violations
	v.leaseID("lease_id", req.GetLeaseId(), true)
	if err := v.err(); err != nil {
		return nil, err
	}
	l, err := s.leases.Renew(ctx, req.GetLeaseId())
	if err != nil {
		return nil, leaseStatus(ctx, err)
	}
	return leaseProto(l), nil
}

// ReleaseLease frees a lease's slot.
func (s *Animation) ReleaseLease(ctx context.Context, req *whirlv1.ReleaseLeaseRequest) (*whirlv1.ReleaseLeaseResponse, error) {
	var v violations
	v.leaseID("lease_id", req.GetLeaseId(), true)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := s.leases.Release(ctx, req.GetLeaseId()); err != nil {
		return nil, leaseStatus(ctx, err)
	}
	return &whirlv1.ReleaseLeaseResponse{}, nil
}

func leaseProto(l lease.Lease) *whirlv1.Lease {
	return &whirlv1.Lease{
		LeaseId:       l.Token,
		ExpireTime:    timestamppb.New(l.ExpiresAt),
		Ttl:           durationpb.New(l.TTL),
		MaxExpireTime: timestamppb.New(l.MaxExpiresAt),
		Holder:        l.Holder,
		Handle:        l.Handle,
	}
}
