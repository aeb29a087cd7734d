package service_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

const adminToken = "s3cret-admin"

func startLeases(t *testing.T, capacity int) (whirlv1.AnimationServiceClient, whirlv1.LeaseAdminServiceClient) {
	t.Helper()
	reg := lease.NewMemory(lease.Config{Capacity: capacity})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{Leases: reg, AdminToken: adminToken})
	conn := testserver.Dial(t, srv.Addr)
	return whirlv1.NewAnimationServiceClient(conn), whirlv1.NewLeaseAdminServiceClient(conn)
}

// TestAcquireStorm fires 2,000 concurrent AcquireLease calls and finds exactly
// capacity granted; every refusal carries RetryInfo, QuotaFailure and the
// grpc-retry-pushback-ms trailer.
func TestAcquireStorm(t *testing.T) {
	for _, capacity := range []int{1, 5} {
		t.Run(fmt.Sprintf("capacity=%d", capacity), func(t *testing.T) {
			api, _ := startLeases(t, capacity)
			const calls = 2000
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				granted = map[string]bool{}
				bad     []string
			)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for i := range calls {
				wg.Go(func() {
					var trailer metadata.MD
					l, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "storm"}, grpc.Trailer(&trailer))
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						granted[l.GetLeaseId()] = true
						return
					}
					st := status.Convert(err)
					if st.Code() != codes.ResourceExhausted {
						bad = append(bad, st.String())
						return
					}
					var retry *errdetails.RetryInfo
					var quota *errdetails.QuotaFailure
					for _, d := range st.Details() {
						switch d := d.(type) {
						case *errdetails.RetryInfo:
							retry = d
						case *errdetails.QuotaFailure:
							quota = d
						}
					}
					if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 || quota == nil || len(trailer.Get("grpc-retry-pushback-ms")) != 1 {
						bad = append(bad, fmt.Sprintf("call %d: refusal without RetryInfo/QuotaFailure/pushback: %v", i, st))
					}
				})
			}
			wg.Wait()
			if len(granted) != capacity {
				t.Errorf("granted %d leases, want exactly %d", len(granted), capacity)
			}
			if len(bad) > 0 {
				t.Errorf("%d bad outcomes, first: %s", len(bad), bad[0])
			}
		})
	}
}

func TestLeaseLifecycle(t *testing.T) {
	api, admin := startLeases(t, 2)
	ctx := context.Background()
	l, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.GetLeaseId()) != 32 || l.GetTtl().AsDuration() != lease.DefaultTTL || l.GetHandle() == "" {
		t.Fatalf("unexpected lease %v", l)
	}
	again, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "alice", LeaseId: l.GetLeaseId()})
	if err != nil || again.GetLeaseId() != l.GetLeaseId() {
		t.Fatalf("re-acquire with own lease: %v, %v", again, err)
	}
	if _, err := api.RenewLease(ctx, &whirlv1.RenewLeaseRequest{LeaseId: l.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
	list, err := admin.ListLeases(authed, &whirlv1.ListLeasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if list.GetCount() != 1 || list.GetCapacity() != 2 || list.GetLeases()[0].GetHolder() != "alice" {
		t.Fatalf("ListLeases = %v", list)
	}
	if strings.Contains(list.String(), l.GetLeaseId()) {
		t.Fatal("ListLeases leaked a lease token")
	}
	if _, err := api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"renew released": func() error {
			_, err := api.RenewLease(ctx, &whirlv1.RenewLeaseRequest{LeaseId: l.GetLeaseId()})
			return err
		},
		"release released": func() error {
			_, err := api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()})
			return err
		},
	} {
		if got := status.Code(call()); got != codes.NotFound {
			t.Errorf("%s: code %v, want NotFound", name, got)
		}
	}

	// Revoke by handle.
	l2, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeLease(authed, &whirlv1.RevokeLeaseRequest{Handle: l2.GetHandle()}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.RenewLease(ctx, &whirlv1.RenewLeaseRequest{LeaseId: l2.GetLeaseId()}); status.Code(err) != codes.NotFound {
		t.Fatalf("renew after revoke: %v, want NotFound", err)
	}
}

func TestWaitingAcquireHonoursDeadline(t *testing.T) {
	api, _ := startLeases(t, 1)
	ctx := context.Background()
	if _, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "first"}); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := api.AcquireLease(dctx, &whirlv1.AcquireLeaseRequest{Holder: "second", Wait: true})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("waiting acquire past deadline: %v, want DeadlineExceeded", err)
	}
}

func TestAdminAuth(t *testing.T) {
	reg := lease.NewMemory(lease.Config{})
	t.Cleanup(func() { _ = reg.Close() })
	noToken := testserver.Start(t, service.Config{Leases: reg})
	withToken := testserver.Start(t, service.Config{Leases: reg, AdminToken: adminToken})
	tests := []struct {
		name   string
		addr   string
		header string
		want   codes.Code
	}{
		{"no token configured", noToken.Addr, "Bearer anything", codes.PermissionDenied},
		{"missing header", withToken.Addr, "", codes.Unauthenticated},
		{"wrong scheme", withToken.Addr, "Basic " + adminToken, codes.Unauthenticated},
		{"wrong token", withToken.Addr, "Bearer nope", codes.Unauthenticated},
		{"right token", withToken.Addr, "Bearer " + adminToken, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admin := whirlv1.NewLeaseAdminServiceClient(testserver.Dial(t, tt.addr))
			ctx := context.Background()
			if tt.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tt.header)
			}
			_, err := admin.ListLeases(ctx, &whirlv1.ListLeasesRequest{})
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

// TestLeaseBadInput: malformed requests fail INVALID_ARGUMENT naming the
// offending field, before the registry is touched.
func TestLeaseBadInput(t *testing.T) {
	api, admin := startLeases(t, 1)
	ctx := context.Background()
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
	long := strings.Repeat("x", 129)
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"empty holder", func() error {
			_, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{})
			return err
		}, "holder"},
		{"oversized holder", func() error {
			_, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: long})
			return err
		}, "holder"},
		{"control characters in holder", func() error {
			_, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "a\x00b"})
			return err
		}, "holder"},
		{"malformed lease id on acquire", func() error {
			_, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "h", LeaseId: "ZZ"})
			return err
		}, "lease_id"},
		{"oversized lease id", func() error {
			_, err := api.RenewLease(ctx, &whirlv1.RenewLeaseRequest{LeaseId: strings.Repeat("a", 4096)})
			return err
		}, "lease_id"},
		{"empty lease id on renew", func() error {
			_, err := api.RenewLease(ctx, &whirlv1.RenewLeaseRequest{})
			return err
		}, "lease_id"},
		{"uppercase lease id on release", func() error {
			_, err := api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: strings.Repeat("A", 32)})
			return err
		}, "lease_id"},
		{"malformed handle", func() error {
			_, err := admin.RevokeLease(authed, &whirlv1.RevokeLeaseRequest{Handle: "../../etc"})
			return err
		}, "handle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertFieldViolation(t, tt.call(), tt.field)
		})
	}
}

// assertFieldViolation checks err is INVALID_ARGUMENT with a BadRequest naming field.
func assertFieldViolation(t *testing.T, err error, field string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code %v (%v), want InvalidArgument", st.Code(), err)
	}
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return
				}
				fields = append(fields, v.GetField())
			}
		}
	}
	t.Fatalf("no field violation for %q; got %v", field, fields)
}

func nan() float64 { return math.NaN() }
