package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// leaseEnv is a renderer with its registry and admin client in reach.
type leaseEnv struct {
	renderEnv
	reg   *lease.Memory
	admin whirlv1.LeaseAdminServiceClient
}

func startLeaseEnv(t testing.TB, capacity int, cfg service.Config) leaseEnv {
	t.Helper()
	reg := lease.NewMemory(lease.Config{Capacity: capacity})
	t.Cleanup(func() { _ = reg.Close() })
	cfg.Leases, cfg.AdminToken = reg, adminToken
	p := &pids{}
	cfg.StartEncoder = p.starter()
	srv := testserver.Start(t, cfg)
	conn := testserver.Dial(t, srv.Addr)
	return leaseEnv{
		renderEnv: renderEnv{api: whirlv1.NewAnimationServiceClient(conn), pids: p},
		reg:       reg,
		admin:     whirlv1.NewLeaseAdminServiceClient(conn),
	}
}

func (e leaseEnv) acquireLease(t *testing.T) *whirlv1.Lease {
	t.Helper()
	l, err := e.api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// startLongRender starts a render that lasts seconds under leaseID and
// returns its stream once the first chunk has arrived.
func (e leaseEnv) startLongRender(t testing.TB, ctx context.Context, leaseID string, seed uint64) whirlv1.AnimationService_RenderAnimationClient {
	t.Helper()
	req := smallVideo(seed, 1800)
	req.LeaseId = leaseID
	stream, err := e.api.RenderAnimation(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("render ended before its first chunk: %v", err)
		}
		if ev.GetChunk() != nil {
			return stream
		}
	}
}

// rest reads what is left of a stream already past its header (as
// startLongRender leaves it) and keeps how it ended: its trailer, if any,
// and its error.
func rest(stream whirlv1.AnimationService_RenderAnimationClient) result {
	var r result
	for {
		ev, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.err = err
			}
			return r
		}
		if tr := ev.GetTrailer(); tr != nil {
			r.trailer = tr
		}
	}
}

// wantLeaseEnded checks a stream's end: ABORTED, with the reason in an
// ErrorInfo and no trailer.
func wantLeaseEnded(t *testing.T, r result, reason string) {
	t.Helper()
	if r.trailer != nil {
		t.Fatalf("stream of an ended lease carried a trailer")
	}
	st := status.Convert(r.err)
	if st.Code() != codes.Aborted {
		t.Fatalf("stream of an ended lease: %v, want ABORTED", r.err)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reason && info.GetDomain() == "whirl.v1" {
			return
		}
	}
	t.Fatalf("ABORTED without ErrorInfo reason %s: %v", reason, st.Details())
}

// TestLeaseEndEndsRender: releasing or revoking the lease of a running
// render ends that render's stream (ABORTED, the reason as ErrorInfo, no
// trailer), and the slot goes to the next caller only once every encoder of
// the render has exited.
func TestLeaseEndEndsRender(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		end          func(e leaseEnv, l *whirlv1.Lease) error
	}{
		{"release", "LEASE_RELEASED", func(e leaseEnv, l *whirlv1.Lease) error {
			_, err := e.api.ReleaseLease(context.Background(), &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()})
			return err
		}},
		{"revoke", "LEASE_REVOKED", func(e leaseEnv, l *whirlv1.Lease) error {
			_, err := e.admin.RevokeLease(adminCtx(), &whirlv1.RevokeLeaseRequest{Handle: l.GetHandle()})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startLeaseEnv(t, 1, service.Config{})
			l := e.acquireLease(t)
			stream := e.startLongRender(t, t.Context(), l.GetLeaseId(), 11)
			type grant struct {
				alive []int // encoders still alive when the slot was granted
				err   error
			}
			granted := make(chan grant, 1)
			go func() {
				_, err := e.api.AcquireLease(context.Background(), &whirlv1.AcquireLeaseRequest{Holder: "next", Wait: true})
				var alive []int
				for _, pid := range e.pids.all() {
					if processExists(pid) {
						alive = append(alive, pid)
					}
				}
				granted <- grant{alive, err}
			}()
			eventually(t, settle, "the next caller to wait", func() string {
				if s, _ := e.reg.List(t.Context()); s.Waiting != 1 {
					return "not waiting yet"
				}
				return ""
			})
			if err := tc.end(e, l); err != nil {
				t.Fatalf("ending the lease: %v", err)
			}
			wantLeaseEnded(t, rest(stream), tc.reason)
			g := <-granted
			if g.err != nil {
				t.Fatalf("next caller: %v", g.err)
			}
			if len(g.alive) > 0 {
				t.Fatalf("slot handed on while encoders %v of the ended render were alive", g.alive)
			}
		})
	}
}

// TestSharedRenderEndsWithLastLease: two callers with their own leases read
// one render; releasing the first ends only its stream, and the render goes
// on for the second to a complete, verified video.
func TestSharedRenderEndsWithLastLease(t *testing.T) {
	e := startLeaseEnv(t, 2, service.Config{})
	a, b := e.acquireLease(t), e.acquireLease(t)
	streamA := e.startLongRender(t, t.Context(), a.GetLeaseId(), 12)
	req := smallVideo(12, 1800)
	req.LeaseId = b.GetLeaseId()
	streamB, err := e.api.RenderAnimation(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	// Once its header has come, the second reader holds the render.
	var joined result
	for joined.header == nil {
		ev, err := streamB.Recv()
		if err != nil {
			t.Fatalf("second reader before its header: %v", err)
		}
		joined.header = ev.GetHeader()
	}
	if _, err := e.api.ReleaseLease(t.Context(), &whirlv1.ReleaseLeaseRequest{LeaseId: a.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
	wantLeaseEnded(t, rest(streamA), "LEASE_RELEASED")
	rb := collectOnto(t, streamB, joined, nil)
	if rb.err != nil || rb.trailer == nil {
		t.Fatalf("second reader after the first lease ended: %v", rb.err)
	}
	if rb.trailer.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_SHARED || sha(rb.video) != rb.trailer.GetSha256() {
		t.Fatalf("second reader: source %v, sha256 match %v; want SHARED and a verified video",
			rb.trailer.GetSource(), sha(rb.video) == rb.trailer.GetSha256())
	}
}

// TestOrphanGrace: a client that loses its stream mid-render and resumes
// with the same lease joins the render still running (SHARED) instead of
// starting over, and the two parts make the whole video; a lease released
// while its render is orphaned ends the render at once.
func TestOrphanGrace(t *testing.T) {
	t.Run("resume joins", func(t *testing.T) {
		e := startLeaseEnv(t, 1, service.Config{OrphanGrace: time.Minute})
		l := e.acquireLease(t)
		ctx, cancel := context.WithCancel(t.Context())
		req := smallVideo(13, 900)
		req.LeaseId = l.GetLeaseId()
		stream, err := e.api.RenderAnimation(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		first := collect(t, stream, func(*whirlv1.MediaChunk) { cancel() })
		if status.Code(first.err) != codes.Canceled || first.header == nil {
			t.Fatalf("cut stream: %v", first.err)
		}
		req.Resume = &whirlv1.Resume{VideoId: first.header.GetVideoId(), Offset: int64(len(first.video))}
		var rest result
		eventually(t, settle, "the resume to be admitted", func() string {
			stream, err := e.api.RenderAnimation(t.Context(), req)
			if err != nil {
				return err.Error()
			}
			rest = collectAfter(t, stream, first.video, nil)
			if status.Code(rest.err) == codes.FailedPrecondition {
				return "lease still busy with the cut call"
			}
			return ""
		})
		if rest.err != nil || rest.trailer == nil {
			t.Fatalf("resumed stream: %v", rest.err)
		}
		if rest.trailer.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_SHARED {
			t.Errorf("resumed stream's source %v, want SHARED (joined the render)", rest.trailer.GetSource())
		}
		if sha(rest.video) != rest.trailer.GetSha256() {
			t.Errorf("cut and resumed parts do not make the video the trailer describes")
		}
	})
	t.Run("release ends the orphan", func(t *testing.T) {
		e := startLeaseEnv(t, 1, service.Config{OrphanGrace: time.Hour})
		l := e.acquireLease(t)
		ctx, cancel := context.WithCancel(t.Context())
		stream := e.startLongRender(t, ctx, l.GetLeaseId(), 14)
		cancel()
		rest(stream)
		if _, err := e.api.ReleaseLease(t.Context(), &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()}); err != nil {
			t.Fatal(err)
		}
		e.pids.waitGone(t, "encoders of the orphaned render after its lease was released")
		if _, err := e.api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: "next", Wait: true}); err != nil {
			t.Fatalf("slot after the orphan ended: %v", err)
		}
	})
}

// TestWaitingBounded: a full wait line, and a client with its cap of
// acquires under way, are refused at once with the full refusal details.
func TestWaitingBounded(t *testing.T) {
	acquireCall := func(wait bool) limitedCall {
		return func(ctx context.Context, api whirlv1.AnimationServiceClient, opts ...grpc.CallOption) error {
			_, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "late", Wait: wait}, opts...)
			return err
		}
	}
	for _, tc := range []struct {
		name       string
		maxWaiting int
		inFlight   int
		subject    string
	}{
		{"line full", 1, 0, "lease_queue"},
		{"client cap", 64, 2, "acquire_inflight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := lease.NewMemory(lease.Config{Capacity: 1, MaxWaiting: tc.maxWaiting})
			t.Cleanup(func() { _ = reg.Close() })
			srv := testserver.Start(t, service.Config{Leases: reg, AcquireInFlight: tc.inFlight})
			api := whirlv1.NewAnimationServiceClient(testserver.Dial(t, srv.Addr))
			if _, err := api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: "holder"}); err != nil {
				t.Fatal(err)
			}
			// Fill whichever bound the case is about.
			waiters := tc.maxWaiting
			if tc.inFlight > 0 {
				waiters = tc.inFlight
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			for range waiters {
				go func() { _ = acquireCall(true)(ctx, api) }()
			}
			eventually(t, settle, "the waiters to queue", func() string {
				if s, _ := reg.List(t.Context()); s.Waiting != waiters {
					return fmt.Sprintf("%d waiting", s.Waiting)
				}
				return ""
			})
			checkRefusal(t, acquireCall(true), api, t.Context(), tc.subject)
		})
	}
}
