package service

import (
	"context"
	"crypto/subtle"
	"fmt"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whirl-dev/whirl/internal/lease"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Admin implements whirl.v1.LeaseAdminService. Authentication happens in the
// interceptor built by adminAuth, before any handler runs.
type Admin struct {
	whirlv1.UnimplementedLeaseAdminServiceServer
	leases Leases
}

var _ whirlv1.LeaseAdminServiceServer = (*Admin)(nil)

// ListLeases describes the pool without tokens.
func (a *Admin) ListLeases(ctx context.Context, _ *whirlv1.ListLeasesRequest) (*whirlv1.ListLeasesResponse, error) {
	snap, err := a.leases.List(ctx)
	if err != nil {
		return nil, leaseStatus(ctx, err)
	}
	resp := &whirlv1.ListLeasesResponse{
		Count:    int32(len(snap.Leases)),
		Capacity: int32(snap.Capacity),
		Waiting:  int32(snap.Waiting),
	}
	for _, l := range snap.Leases {
		resp.Leases = append(resp.Leases, &whirlv1.LeaseInfo{
			Handle:        l.Handle,
			Holder:        l.Holder,
			AcquireTime:   timestamppb.New(l.AcquiredAt),
			ExpireTime:    timestamppb.New(l.ExpiresAt),
			MaxExpireTime: timestamppb.New(l.MaxExpiresAt),
			Rendering:     l.Pinned,
		})
	}
	return resp, nil
}

// RevokeLease ends a lease by handle.
func (a *Admin) RevokeLease(ctx context.Context, req *whirlv1.RevokeLeaseRequest) (*whirlv1.RevokeLeaseResponse, error) {
	var v violations
	if !lease.ValidHandle(req.GetHandle()) {
		v.add("handle", fmt.Sprintf("must be the %d lowercase hex digits ListLeases shows", lease.HandleDigits))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := a.leases.Revoke(ctx, req.GetHandle()); err != nil {
		return nil, leaseStatus(ctx, err)
	}
	return &whirlv1.RevokeLeaseResponse{}, nil
}

// adminAuth checks the `authorization: Bearer <token>` metadata in constant
// time against the token current when the call arrives. With no token
// configured every admin call is refused.
func adminAuth(current func() string) auth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		token := current()
		if token == "" {
			return nil, newStatus(codes.PermissionDenied, whirlv1.ErrorReason_ADMIN_DISABLED, "admin RPCs are disabled: the server has no admin token configured")
		}
		got, err := auth.AuthFromMD(ctx, "bearer")
		if err != nil {
			return nil, newStatus(codes.Unauthenticated, whirlv1.ErrorReason_UNAUTHENTICATED, "missing admin token: send authorization: Bearer <token>")
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			return nil, newStatus(codes.Unauthenticated, whirlv1.ErrorReason_UNAUTHENTICATED, "invalid admin token")
		}
		return ctx, nil
	}
}
