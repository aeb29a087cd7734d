package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

func TestRenderWritesVerifiedMP4(t *testing.T) {
	srv := startServer(t, service.Config{})
	c := dial(t, srv.Addr)
	path := filepath.Join(t.TempDir(), "curve.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var progress []client.Progress
	req := smallVideo(42, 30)
	res, err := c.Render(context.Background(), req, f, client.WithProgress(func(p client.Progress) { progress = append(progress, p) }))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if req.GetLeaseId() != "" {
		t.Error("Render modified the caller's request")
	}
	mp4check.ProbeFile(t, path, mp4check.Expect{Width: 160, Height: 120, FPS: 30, Frames: 30})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != res.Trailer.GetSha256() || got != res.SHA256 {
		t.Errorf("file sha256 %s, trailer %s, result %s", got, res.Trailer.GetSha256(), res.SHA256)
	}
	if int64(len(data)) != res.Bytes || res.Bytes != res.Trailer.GetTotalBytes() {
		t.Errorf("file %d bytes, result %d, trailer %d", len(data), res.Bytes, res.Trailer.GetTotalBytes())
	}
	if res.Header.GetWidth() != 160 || res.Header.GetFrames() != 30 || res.Header.GetCurve().GetSummary().GetWheels() == 0 {
		t.Errorf("header %v", res.Header)
	}
	if len(progress) < 3 || progress[0].Phase != client.PhaseLease {
		t.Fatalf("progress %+v: want lease, rendering, ..., done", progress)
	}
	last := progress[len(progress)-1]
	if last.Phase != client.PhaseDone || last.FramesDone != 30 || last.Bytes != res.Bytes {
		t.Errorf("last progress %+v", last)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Bytes < progress[i-1].Bytes {
			t.Errorf("progress bytes went backwards: %+v then %+v", progress[i-1], progress[i])
		}
	}
	if !res.Released || res.Lease == nil || res.Lease.Holder != t.Name() {
		t.Errorf("lease %+v released %v", res.Lease, res.Released)
	}
	if n := liveLeases(t, c); n != 0 {
		t.Errorf("%d live leases after the render, want 0", n)
	}
}

// tamper returns a server option that passes every RenderAnimation event
// through edit, which returns the events to send in its place (none drops
// it). edit gets a copy it may change; the server's own hash is unaffected.
func tamper(edit func(ev *whirlv1.RenderAnimationResponse, chunk int) []*whirlv1.RenderAnimationResponse) grpc.ServerOption {
	return grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if info.FullMethod != whirlv1.AnimationService_RenderAnimation_FullMethodName {
			return handler(srv, ss)
		}
		return handler(srv, &tamperStream{ServerStream: ss, edit: edit})
	})
}

type tamperStream struct {
	grpc.ServerStream
	edit   func(*whirlv1.RenderAnimationResponse, int) []*whirlv1.RenderAnimationResponse
	chunks int
}

func (s *tamperStream) SendMsg(m any) error {
	ev, ok := m.(*whirlv1.RenderAnimationResponse)
	if !ok {
		return s.ServerStream.SendMsg(m)
	}
	n := s.chunks
	if ev.GetChunk() != nil {
		s.chunks++
	}
	for _, out := range s.edit(proto.Clone(ev).(*whirlv1.RenderAnimationResponse), n) {
		if err := s.ServerStream.SendMsg(out); err != nil {
			return err
		}
	}
	return nil
}

func TestRenderDetectsTampering(t *testing.T) {
	keep := func(ev *whirlv1.RenderAnimationResponse) []*whirlv1.RenderAnimationResponse {
		return []*whirlv1.RenderAnimationResponse{ev}
	}
	tests := []struct {
		name string
		want error
		edit func(ev *whirlv1.RenderAnimationResponse, chunk int) []*whirlv1.RenderAnimationResponse
	}{
		{"flipped byte", client.ErrChecksumMismatch, func(ev *whirlv1.RenderAnimationResponse, chunk int) []*whirlv1.RenderAnimationResponse {
			if c := ev.GetChunk(); c != nil && chunk == 1 {
				c.Data[len(c.Data)/2] ^= 0x01
			}
			return keep(ev)
		}},
		{"no trailer", client.ErrTruncated, func(ev *whirlv1.RenderAnimationResponse, _ int) []*whirlv1.RenderAnimationResponse {
			if ev.GetTrailer() != nil {
				return nil
			}
			return keep(ev)
		}},
		{"missing chunk", client.ErrOutOfOrder, func(ev *whirlv1.RenderAnimationResponse, chunk int) []*whirlv1.RenderAnimationResponse {
			if ev.GetChunk() != nil && chunk == 1 {
				return nil
			}
			return keep(ev)
		}},
		{"repeated chunk", client.ErrOutOfOrder, func(ev *whirlv1.RenderAnimationResponse, chunk int) []*whirlv1.RenderAnimationResponse {
			if ev.GetChunk() != nil && chunk == 1 {
				return []*whirlv1.RenderAnimationResponse{ev, ev}
			}
			return keep(ev)
		}},
		{"short total", client.ErrSizeMismatch, func(ev *whirlv1.RenderAnimationResponse, _ int) []*whirlv1.RenderAnimationResponse {
			if tr := ev.GetTrailer(); tr != nil {
				tr.TotalBytes--
			}
			return keep(ev)
		}},
		{"chunk before header", client.ErrProtocol, func(ev *whirlv1.RenderAnimationResponse, _ int) []*whirlv1.RenderAnimationResponse {
			if ev.GetHeader() != nil {
				return nil
			}
			return keep(ev)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, service.Config{}, tamper(tt.edit))
			c := dial(t, srv.Addr)
			// 10 frames: an init segment and two fragments, enough chunks to
			// drop or repeat the second.
			res, err := c.Render(context.Background(), smallVideo(5, 10), io.Discard)
			if !errors.Is(err, tt.want) || res != nil {
				t.Fatalf("Render: %v, %v; want %v", res, err, tt.want)
			}
			if n := liveLeases(t, c); n != 0 {
				t.Errorf("%d live leases after a failed render, want 0", n)
			}
		})
	}
}

// gatedWriter blocks its first Write until gate closes, after telling
// started: the render holding it keeps its lease meanwhile.
type gatedWriter struct {
	once    sync.Once
	started func()
	gate    <-chan struct{}
	n       int64
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		w.started()
		<-w.gate
	})
	w.n += int64(len(p))
	return len(p), nil
}

// TestSixClientsFiveLeases: five renders hold every lease; a sixth is
// refused (or queued) until one finishes, then renders; all finish in time.
func TestSixClientsFiveLeases(t *testing.T) {
	for _, policy := range []client.AcquirePolicy{client.AcquireRetry, client.AcquireWait} {
		name := map[client.AcquirePolicy]string{client.AcquireRetry: "retry", client.AcquireWait: "wait"}[policy]
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, service.Config{RenderSlots: 5, RenderWorkers: 1})
			c := dial(t, srv.Addr, client.WithMaxRetryDelay(200*time.Millisecond))
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()

			gate := make(chan struct{})
			var holding sync.WaitGroup
			holding.Add(5)
			results := make([]*client.Result, 6)
			errs := make([]error, 6)
			var wg sync.WaitGroup
			for i := range 5 {
				wg.Go(func() {
					w := &gatedWriter{started: holding.Done, gate: gate}
					results[i], errs[i] = c.Render(ctx, smallVideo(uint64(i+1), 15), w)
				})
			}
			holding.Wait() // five leases live, five renders stalled

			var refusals atomic.Int32
			wg.Go(func() {
				results[5], errs[5] = c.Render(ctx, smallVideo(6, 15), io.Discard,
					client.WithAcquirePolicy(policy),
					client.WithProgress(func(p client.Progress) {
						if p.Phase == client.PhaseLease && p.RetryIn > 0 {
							refusals.Add(1)
						}
					}))
			})
			// The sixth must be refused or queued before the others go on.
			for {
				if policy == client.AcquireRetry && refusals.Load() > 0 {
					break
				}
				if policy == client.AcquireWait {
					p, err := c.ListLeases(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if p.Waiting == 1 {
						break
					}
				}
				if ctx.Err() != nil {
					t.Fatal("the sixth client was never refused or queued")
				}
				time.Sleep(20 * time.Millisecond)
			}
			close(gate)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("client %d: %v", i+1, err)
				} else if !results[i].Released || results[i].Bytes == 0 {
					t.Errorf("client %d: %+v", i+1, results[i])
				}
			}
			if n := liveLeases(t, c); n != 0 {
				t.Errorf("%d live leases at the end, want 0", n)
			}
		})
	}
}

// TestCancelStopsAndReleases: cancelling mid-stream ends Render with
// Canceled, and the lease is already released when Render returns.
func TestCancelStopsAndReleases(t *testing.T) {
	srv := startServer(t, service.Config{})
	c := dial(t, srv.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	res, err := c.Render(ctx, smallVideo(7, 1800), io.Discard, client.WithProgress(func(p client.Progress) {
		if p.Bytes > 0 {
			cancel()
		}
	}))
	if res != nil || !errors.Is(err, context.Canceled) || status.Code(err) != codes.Canceled {
		t.Fatalf("Render after cancel: %v, %v; want context.Canceled with code Canceled", res, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Render took %s to notice the cancel", d)
	}
	if n := liveLeases(t, c); n != 0 {
		t.Errorf("%d live leases after a cancelled render, want 0", n)
	}
}

// TestDeadlineWhileAllLeasesTaken: with every lease held, Render retries
// until its deadline and then fails with the refusal, matching both
// ErrExhausted and context.DeadlineExceeded.
func TestDeadlineWhileAllLeasesTaken(t *testing.T) {
	srv := startServer(t, service.Config{})
	c := dial(t, srv.Addr, client.WithMaxRetryDelay(100*time.Millisecond))
	for range 5 {
		if _, err := c.Acquire(context.Background(), client.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Acquire(context.Background(), client.AcquireOptions{})
	var ex *client.ExhaustedError
	if !errors.As(err, &ex) || status.Code(err) != codes.ResourceExhausted || ex.RetryAfter <= 0 || ex.RetryAfter > lease.DefaultTTL {
		t.Fatalf("sixth Acquire: %v (%+v); want ResourceExhausted with a RetryInfo delay", err, ex)
	}

	// The deadline may end the retries between two attempts or during one:
	// either way the error is the refusal, ended by the deadline.
	const deadline = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	var attempts int
	_, err = c.Render(ctx, smallVideo(1, 30), io.Discard, client.WithProgress(func(p client.Progress) { attempts = p.Attempt }))
	if !errors.Is(err, client.ErrExhausted) || !errors.Is(err, context.DeadlineExceeded) || status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Render with every lease taken: %v", err)
	}
	if d := time.Since(start); d > deadline+5*time.Second {
		t.Errorf("gave up %v after it began, deadline was %v", d, deadline)
	}
	if attempts < 3 {
		t.Errorf("%d attempts in %v with a 100ms retry cap", attempts, deadline)
	}
}

// TestDeadlineDuringRetriedAcquire: when the deadline ends a retried
// AcquireLease while it is in flight, the error is still the refusal that
// made it retry, ended by the deadline.
func TestDeadlineDuringRetriedAcquire(t *testing.T) {
	var calls atomic.Int32
	refuseThenHang := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if info.FullMethod != whirlv1.AnimationService_AcquireLease_FullMethodName {
			return handler(ctx, req)
		}
		if calls.Add(1) == 1 {
			return nil, status.Error(codes.ResourceExhausted, "all slots taken")
		}
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	})
	c := dial(t, startServer(t, service.Config{}, refuseThenHang).Addr, client.WithMaxRetryDelay(20*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := c.Acquire(ctx, client.AcquireOptions{Policy: client.AcquireRetry})
	var ex *client.ExhaustedError
	if !errors.As(err, &ex) || !errors.Is(err, context.DeadlineExceeded) || status.Code(err) != codes.ResourceExhausted || ex.Attempts != 2 {
		t.Fatalf("deadline during the second attempt: %v (%+v); want the refusal after 2 attempts, ended by the deadline", err, ex)
	}
}

// TestRenderKeepsCallersLease: a lease given by the caller is used, renewed
// while the render runs, and left live.
func TestRenderKeepsCallersLease(t *testing.T) {
	var renewals atomic.Int32
	countRenewals := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if info.FullMethod == whirlv1.AnimationService_RenewLease_FullMethodName {
			renewals.Add(1)
		}
		return handler(ctx, req)
	})
	reg := lease.NewMemory(lease.Config{Capacity: 5, TTL: 300 * time.Millisecond, MaxAge: time.Minute})
	t.Cleanup(func() { _ = reg.Close() })
	srv := startServer(t, service.Config{Leases: reg}, countRenewals)
	c := dial(t, srv.Addr)
	l, err := c.Acquire(context.Background(), client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A writer that stalls for a while: the render outlives the TTL several
	// times over.
	stall := make(chan struct{})
	time.AfterFunc(time.Second, func() { close(stall) })
	w := &gatedWriter{started: func() {}, gate: stall}
	res, err := c.Render(context.Background(), smallVideo(3, 30), w, client.WithLease(l.ID))
	if err != nil {
		t.Fatal(err)
	}
	if res.Released || res.Lease.ID != l.ID {
		t.Errorf("result lease %+v released %v; want the caller's, not released", res.Lease, res.Released)
	}
	if n := renewals.Load(); n < 3 {
		t.Errorf("%d renewals during a 1s render with a 300ms TTL, want at least 3", n)
	}
	if _, err := c.Renew(context.Background(), l.ID); err != nil {
		t.Fatalf("caller's lease after the render: %v", err)
	}
	if err := c.Release(context.Background(), l.ID); err != nil {
		t.Fatal(err)
	}

	// KeepLease keeps a lease Render acquired itself.
	res, err = c.Render(context.Background(), smallVideo(3, 5), io.Discard, client.KeepLease())
	if err != nil {
		t.Fatal(err)
	}
	if res.Released || liveLeases(t, c) != 1 {
		t.Errorf("KeepLease: released %v, %d live leases", res.Released, liveLeases(t, c))
	}
	if err := c.Release(context.Background(), res.Lease.ID); err != nil {
		t.Fatal(err)
	}
}

func TestStatusCodesSurvive(t *testing.T) {
	srv := startServer(t, service.Config{})
	c := dial(t, srv.Addr)
	ctx := context.Background()

	bad := smallVideo(1, 30)
	bad.Source = &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Wheels: 100}}
	_, err := c.Render(ctx, bad, io.Discard)
	var rpcErr *client.RPCError
	if status.Code(err) != codes.InvalidArgument || !errors.As(err, &rpcErr) || rpcErr.Op != "render" {
		t.Fatalf("invalid render: %v", err)
	}
	if v := client.FieldViolations(err); !slices.ContainsFunc(v, func(s string) bool { return len(s) > 15 && s[:15] == "generate.wheels" }) {
		t.Errorf("field violations %q, want generate.wheels", v)
	}
	if n := liveLeases(t, c); n != 0 {
		t.Errorf("%d live leases after a refused render", n)
	}

	const unknown = "0123456789abcdef0123456789abcdef"
	if _, err := c.Renew(ctx, unknown); status.Code(err) != codes.NotFound {
		t.Errorf("renew unknown lease: %v", err)
	}
	if _, err := c.Render(ctx, smallVideo(1, 5), io.Discard, client.WithLease(unknown)); status.Code(err) != codes.NotFound {
		t.Errorf("render with unknown lease: %v", err)
	}
	if err := c.RevokeLease(ctx, "0123456789abcdef"); status.Code(err) != codes.NotFound {
		t.Errorf("revoke unknown handle: %v", err)
	}

	noToken := dial(t, srv.Addr, client.WithToken(""))
	if _, err := noToken.ListLeases(ctx); status.Code(err) != codes.Unauthenticated {
		t.Errorf("list without token: %v", err)
	}
	wrong := dial(t, srv.Addr, client.WithToken("wrong"))
	if _, err := wrong.ListLeases(ctx); status.Code(err) != codes.Unauthenticated {
		t.Errorf("list with a wrong token: %v", err)
	}
	// The token goes to admin calls only.
	var sawAuth atomic.Bool
	spy := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if info.FullMethod == whirlv1.AnimationService_AcquireLease_FullMethodName && hasAuth(ctx) {
			sawAuth.Store(true)
		}
		return handler(ctx, req)
	})
	spied := dial(t, startServer(t, service.Config{}, spy).Addr)
	l, err := spied.Acquire(ctx, client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sawAuth.Load() {
		t.Error("the admin token was sent with AcquireLease")
	}
	_ = spied.Release(ctx, l.ID)
}

func TestAdminDisabledServer(t *testing.T) {
	reg := lease.NewMemory(lease.Config{})
	t.Cleanup(func() { _ = reg.Close() })
	// Not startServer, which configures a token.
	srv := testserver.Start(t, service.Config{Leases: reg})
	c := dial(t, srv.Addr)
	if _, err := c.ListLeases(context.Background()); status.Code(err) != codes.PermissionDenied {
		t.Errorf("list on a server without admin token: %v", err)
	}
}

func hasAuth(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get("authorization")) > 0
}

// TestRenderUnderLeaseAtMaxAge: a caller's lease that can no longer be
// renewed is still used until it expires.
func TestRenderUnderLeaseAtMaxAge(t *testing.T) {
	// A maximum age below the TTL leaves no room for any renewal, from the
	// moment the lease is granted until it ends MaxAge later.
	reg := lease.NewMemory(lease.Config{Capacity: 5, TTL: time.Minute, MaxAge: 30 * time.Second})
	t.Cleanup(func() { _ = reg.Close() })
	c := dial(t, startServer(t, service.Config{Leases: reg}).Addr)
	l, err := c.Acquire(context.Background(), client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Renew(context.Background(), l.ID); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("renew at max age: %v, want FailedPrecondition", err)
	}
	if _, err := c.Render(context.Background(), smallVideo(2, 5), io.Discard, client.WithLease(l.ID)); err != nil {
		t.Fatalf("render under a lease at its maximum age: %v", err)
	}
}
