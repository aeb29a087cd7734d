package service_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/queue"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// reasonCase is one way whirl refuses or fails a call, and the status it
// must give.
type reasonCase struct {
	name   string
	code   codes.Code
	reason whirlv1.ErrorReason
	call   func(t *testing.T) error
}

// notYetProduced are the reasons no server status carries to a client:
// none, and the two whose status only the client itself sees: when a
// caller cancels or its deadline passes, the server's status never reaches
// it (TestWithReasonMapsForeignErrors covers the server's side).
var notYetProduced = map[whirlv1.ErrorReason]bool{
	whirlv1.ErrorReason_ERROR_REASON_UNSPECIFIED: true,
	whirlv1.ErrorReason_CANCELED:                 true,
	whirlv1.ErrorReason_DEADLINE_EXCEEDED:        true,
}

// TestEveryRefusalCarriesItsReason walks every refusal and failure the
// server can give a client and checks that its status carries exactly one
// google.rpc.ErrorInfo in the whirl.v1 domain with the expected reason,
// beside the details its code calls for; and that every reason the
// contract defines is among them, unless listed in notYetProduced.
func TestEveryRefusalCarriesItsReason(t *testing.T) {
	seen := map[whirlv1.ErrorReason]bool{}
	for _, tc := range reasonCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(t)
			checkReason(t, err, tc.code, tc.reason)
			seen[tc.reason] = true
		})
	}
	if t.Failed() {
		return
	}
	for v, name := range whirlv1.ErrorReason_name {
		if r := whirlv1.ErrorReason(v); !seen[r] && !notYetProduced[r] {
			t.Errorf("no case produces %s", name)
		}
	}
}

// checkReason fails t unless err is a status with code and exactly one
// ErrorInfo, of reason in the whirl.v1 domain, and the details code calls for.
func checkReason(t *testing.T, err error, code codes.Code, reason whirlv1.ErrorReason) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	var infos []*errdetails.ErrorInfo
	var retry, quota, badRequest, precondition int
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			infos = append(infos, d)
		case *errdetails.RetryInfo:
			retry++
		case *errdetails.QuotaFailure:
			quota++
		case *errdetails.BadRequest:
			badRequest++
		case *errdetails.PreconditionFailure:
			precondition++
			// The violation type existing clients read keeps its spelling.
			if got := d.GetViolations()[0].GetType(); got != reason.String() {
				t.Errorf("PreconditionFailure type %q, want %q", got, reason)
			}
		case error:
			t.Errorf("undecodable detail: %v", d)
		}
	}
	if len(infos) != 1 || infos[0].GetDomain() != service.ErrorDomain || infos[0].GetReason() != reason.String() {
		t.Fatalf("ErrorInfo details %v, want exactly one with reason %s in domain %s (%v)", infos, reason, service.ErrorDomain, err)
	}
	want := map[codes.Code][2]int{ // RetryInfo and QuotaFailure; BadRequest; PreconditionFailure
		codes.ResourceExhausted:  {1, 0},
		codes.InvalidArgument:    {0, 1},
		codes.FailedPrecondition: {0, 0},
	}[code]
	if retry != want[0] || quota != want[0] || badRequest != want[1] || (code == codes.FailedPrecondition) != (precondition == 1) {
		t.Errorf("details of %v: %d RetryInfo, %d QuotaFailure, %d BadRequest, %d PreconditionFailure", code, retry, quota, badRequest, precondition)
	}
}

// reasonServer serves cfg with a memory registry of two leases (unless cfg
// has one) and the admin token.
func reasonServer(t *testing.T, cfg service.Config) (whirlv1.AnimationServiceClient, whirlv1.LeaseAdminServiceClient, *testserver.Server) {
	t.Helper()
	if cfg.Leases == nil {
		reg := lease.NewMemory(lease.Config{Capacity: 2})
		t.Cleanup(func() { _ = reg.Close() })
		cfg.Leases = reg
	}
	srv := testserver.Start(t, cfg)
	conn := testserver.Dial(t, srv.Addr)
	return whirlv1.NewAnimationServiceClient(conn), whirlv1.NewLeaseAdminServiceClient(conn), srv
}

func acquire(t *testing.T, api whirlv1.AnimationServiceClient) string {
	t.Helper()
	l, err := api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return l.GetLeaseId()
}

// renderErr runs req to its end and returns how it ended.
func renderErr(t *testing.T, api whirlv1.AnimationServiceClient, req *whirlv1.RenderAnimationRequest) error {
	t.Helper()
	stream, err := api.RenderAnimation(t.Context(), req)
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
}

// panicky is a registry whose List panics, as a bug would.
type panicky struct{ *lease.Memory }

func (panicky) List(context.Context) (lease.Snapshot, error) { panic("bug") }

func reasonCases() []reasonCase {
	return append(append(append(leaseReasonCases(), limitReasonCases()...), renderReasonCases()...), leaseEndReasonCases()...)
}

// leaseEndReasonCases are the ends of a render whose lease ended under it,
// and the full wait line.
func leaseEndReasonCases() []reasonCase {
	ended := func(end func(e leaseEnv, l *whirlv1.Lease) error) func(t *testing.T) error {
		return func(t *testing.T) error {
			e := startLeaseEnv(t, 1, service.Config{})
			l := e.acquireLease(t)
			stream := e.startLongRender(t, t.Context(), l.GetLeaseId(), 31)
			if err := end(e, l); err != nil {
				t.Fatal(err)
			}
			return rest(stream).err
		}
	}
	return []reasonCase{
		{"video not found", codes.NotFound, whirlv1.ErrorReason_VIDEO_NOT_FOUND, func(t *testing.T) error {
			api, _, _ := reasonServer(t, service.Config{})
			stream, err := api.GetVideo(t.Context(), &whirlv1.GetVideoRequest{VideoId: strings.Repeat("ab", 32)})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}},
		{"lease queue full", codes.ResourceExhausted, whirlv1.ErrorReason_LEASE_QUEUE_FULL, func(t *testing.T) error {
			reg := lease.NewMemory(lease.Config{Capacity: 1, MaxWaiting: 1})
			t.Cleanup(func() { _ = reg.Close() })
			api, _, _ := reasonServer(t, service.Config{Leases: reg})
			acquire(t, api)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() { _, _ = api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "waiter", Wait: true}) }()
			for s, _ := reg.List(t.Context()); s.Waiting != 1; s, _ = reg.List(t.Context()) {
				time.Sleep(time.Millisecond)
			}
			_, err := api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: "late", Wait: true})
			return err
		}},
		{"lease released under a render", codes.Aborted, whirlv1.ErrorReason_LEASE_RELEASED, ended(func(e leaseEnv, l *whirlv1.Lease) error {
			_, err := e.api.ReleaseLease(context.Background(), &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()})
			return err
		})},
		{"lease revoked under a render", codes.Aborted, whirlv1.ErrorReason_LEASE_REVOKED, ended(func(e leaseEnv, l *whirlv1.Lease) error {
			_, err := e.admin.RevokeLease(adminCtx(), &whirlv1.RevokeLeaseRequest{Handle: l.GetHandle()})
			return err
		})},
		{"lease lost under a render", codes.Aborted, whirlv1.ErrorReason_LEASE_LOST, func(t *testing.T) error {
			reg := fencingLeases{lease.NewMemory(lease.Config{Capacity: 1})}
			t.Cleanup(func() { _ = reg.Close() })
			api, _, _ := reasonServer(t, service.Config{Leases: reg})
			req := smallVideo(32, 60)
			req.LeaseId = acquire(t, api)
			stream, err := api.RenderAnimation(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			return collect(t, stream, nil).err
		}},
	}
}

// fencingLeases is a memory registry whose pins are lost as a store that
// cannot keep them alive loses them (lease.ErrFenced), as soon as made.
type fencingLeases struct{ *lease.Memory }

func (f fencingLeases) Pin(ctx context.Context, token string) (*lease.Pin, error) {
	p, err := f.Memory.Pin(ctx, token)
	if err == nil {
		p.Lose(lease.ErrFenced)
	}
	return p, err
}

func leaseReasonCases() []reasonCase {
	return []reasonCase{
		{"bad request", codes.InvalidArgument, whirlv1.ErrorReason_BAD_REQUEST, func(t *testing.T) error {
			api, _, _ := reasonServer(t, service.Config{})
			_, err := api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{})
			return err
		}},
		{"lease capacity", codes.ResourceExhausted, whirlv1.ErrorReason_LEASE_CAPACITY, func(t *testing.T) error {
			api, _, _ := reasonServer(t, service.Config{})
			acquire(t, api)
			acquire(t, api)
			_, err := api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: "third"})
			return err
		}},
		{"lease not found", codes.NotFound, whirlv1.ErrorReason_LEASE_NOT_FOUND, func(t *testing.T) error {
			api, _, _ := reasonServer(t, service.Config{})
			_, err := api.RenewLease(t.Context(), &whirlv1.RenewLeaseRequest{LeaseId: lease.NewToken()})
			return err
		}},
		{"lease max age", codes.FailedPrecondition, whirlv1.ErrorReason_LEASE_MAX_AGE, func(t *testing.T) error {
			reg := lease.NewMemory(lease.Config{TTL: time.Hour, MaxAge: time.Minute})
			t.Cleanup(func() { _ = reg.Close() })
			api, _, _ := reasonServer(t, service.Config{Leases: reg})
			_, err := api.RenewLease(t.Context(), &whirlv1.RenewLeaseRequest{LeaseId: acquire(t, api)})
			return err
		}},
		{"lease busy", codes.FailedPrecondition, whirlv1.ErrorReason_LEASE_BUSY, func(t *testing.T) error {
			reg := lease.NewMemory(lease.Config{})
			t.Cleanup(func() { _ = reg.Close() })
			api, _, _ := reasonServer(t, service.Config{Leases: reg})
			token := acquire(t, api)
			p, err := reg.Pin(t.Context(), token) // as a render running under it does
			if err != nil {
				t.Fatal(err)
			}
			defer p.Unpin()
			return renderErr(t, api, tinyVideo(token, 1, 5))
		}},
		{"lease store unavailable", codes.Unavailable, whirlv1.ErrorReason_LEASE_STORE_UNAVAILABLE, func(t *testing.T) error {
			reg := lease.NewMemory(lease.Config{})
			_ = reg.Close()
			api, _, _ := reasonServer(t, service.Config{Leases: reg})
			_, err := api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: "h"})
			return err
		}},
		{"admin disabled", codes.PermissionDenied, whirlv1.ErrorReason_ADMIN_DISABLED, func(t *testing.T) error {
			_, admin, _ := reasonServer(t, service.Config{})
			_, err := admin.ListLeases(adminCtx(), &whirlv1.ListLeasesRequest{})
			return err
		}},
		{"admin token missing", codes.Unauthenticated, whirlv1.ErrorReason_UNAUTHENTICATED, func(t *testing.T) error {
			_, admin, _ := reasonServer(t, service.Config{AdminToken: adminToken})
			_, err := admin.ListLeases(t.Context(), &whirlv1.ListLeasesRequest{})
			return err
		}},
		{"admin token wrong", codes.Unauthenticated, whirlv1.ErrorReason_UNAUTHENTICATED, func(t *testing.T) error {
			_, admin, _ := reasonServer(t, service.Config{AdminToken: adminToken})
			ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer wrong")
			_, err := admin.ListLeases(ctx, &whirlv1.ListLeasesRequest{})
			return err
		}},
		{"panic", codes.Internal, whirlv1.ErrorReason_INTERNAL, func(t *testing.T) error {
			reg := lease.NewMemory(lease.Config{})
			t.Cleanup(func() { _ = reg.Close() })
			_, admin, _ := reasonServer(t, service.Config{Leases: panicky{reg}, AdminToken: adminToken})
			_, err := admin.ListLeases(adminCtx(), &whirlv1.ListLeasesRequest{})
			return err
		}},
		{"unknown method", codes.Unimplemented, whirlv1.ErrorReason_UNIMPLEMENTED, func(t *testing.T) error {
			_, _, srv := reasonServer(t, service.Config{})
			return testserver.Dial(t, srv.Addr).Invoke(t.Context(), "/whirl.v1.AnimationService/Nothing", &emptypb.Empty{}, &emptypb.Empty{})
		}},
	}
}

func limitReasonCases() []reasonCase {
	stillLine := func(t *testing.T, cfg service.Config, second bool) error {
		api, _, srv := reasonServer(t, cfg)
		service.HoldStillSlot(t, srv.Server)
		waited := make(chan error, 1)
		go func() { waited <- stillCall(t.Context(), api) }()
		eventually(t, settle, "a still waiting", func() string {
			if _, w := service.StillStats(srv.Server); w != 1 {
				return fmt.Sprintf("%d waiting", w)
			}
			return ""
		})
		if second {
			return stillCall(t.Context(), api)
		}
		return <-waited
	}
	return []reasonCase{
		{"client rate", codes.ResourceExhausted, whirlv1.ErrorReason_CLIENT_RATE_LIMITED, func(t *testing.T) error {
			api, _, _ := reasonServer(t, service.Config{CurveLimits: service.ClientLimits{Rate: 0.01, Burst: 1}})
			if err := curveCall(t.Context(), api); err != nil {
				t.Fatal(err)
			}
			return curveCall(t.Context(), api)
		}},
		{"client in flight", codes.ResourceExhausted, whirlv1.ErrorReason_CLIENT_IN_FLIGHT_LIMITED, func(t *testing.T) error {
			return stillLine(t, service.Config{StillSlots: 1, StillLimits: service.ClientLimits{InFlight: 1}}, true)
		}},
		{"still line full", codes.ResourceExhausted, whirlv1.ErrorReason_QUEUE_FULL, func(t *testing.T) error {
			return stillLine(t, service.Config{StillSlots: 1, StillQueue: queue.Limits{MaxWaiting: 1}}, true)
		}},
		{"still waited too long", codes.ResourceExhausted, whirlv1.ErrorReason_QUEUE_WAIT_EXCEEDED, func(t *testing.T) error {
			return stillLine(t, service.Config{StillSlots: 1, StillQueue: queue.Limits{MaxWaiting: 1, MaxWait: 2 * time.Second}}, false)
		}},
		{"shutting down", codes.Unavailable, whirlv1.ErrorReason_SHUTTING_DOWN, shuttingDown},
	}
}

func renderReasonCases() []reasonCase {
	return []reasonCase{
		{"video changed", codes.FailedPrecondition, whirlv1.ErrorReason_VIDEO_CHANGED, func(t *testing.T) error {
			api, _, _ := reasonServer(t, service.Config{})
			req := tinyVideo(acquire(t, api), 1, 5)
			req.Resume = &whirlv1.Resume{VideoId: strings.Repeat("0", 64), Offset: 1}
			return renderErr(t, api, req)
		}},
		{"renderer unavailable", codes.Unavailable, whirlv1.ErrorReason_RENDERER_UNAVAILABLE, func(t *testing.T) error {
			api, _, _ := reasonServer(t, service.Config{EncoderErr: encode.ErrFFmpegNotFound})
			return renderErr(t, api, tinyVideo(acquire(t, api), 1, 5))
		}},
		{"render failed", codes.Internal, whirlv1.ErrorReason_RENDER_FAILED, func(t *testing.T) error {
			api, _, _ := reasonServer(t, service.Config{StartEncoder: func(context.Context, encode.Options, func(fmp4.Segment) error) (service.FrameEncoder, error) {
				return nil, errors.New("encoder would not start")
			}})
			return renderErr(t, api, tinyVideo(acquire(t, api), 1, 5))
		}},
		{"resume past the end", codes.OutOfRange, whirlv1.ErrorReason_RESUME_OUT_OF_RANGE, func(t *testing.T) error {
			api, _, _ := reasonServer(t, service.Config{})
			req := tinyVideo(acquire(t, api), 1, 5)
			stream, err := api.RenderAnimation(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			r := collect(t, stream, nil)
			if r.err != nil {
				t.Fatal(r.err)
			}
			req.Resume = &whirlv1.Resume{VideoId: r.header.GetVideoId(), Offset: r.trailer.GetTotalBytes() + 1}
			return renderErr(t, api, req)
		}},
	}
}

// shuttingDown makes a call once the server has begun to shut down, while
// a front end drains.
func shuttingDown(t *testing.T) error {
	reg := lease.NewMemory(lease.Config{})
	t.Cleanup(func() { _ = reg.Close() })
	srv := service.NewServer(service.Config{Leases: reg, ShutdownGrace: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := whirlv1.NewAnimationServiceClient(testserver.Dial(t, lis.Addr().String()))
	refused := make(chan error, 1)
	srv.DrainFirst(func(context.Context) { refused <- curveCall(context.Background(), api) })
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	if err := curveCall(t.Context(), api); err != nil {
		t.Fatal(err)
	}
	cancel()
	err = <-refused
	if serveErr := <-served; serveErr != nil {
		t.Fatal(serveErr)
	}
	return err
}
