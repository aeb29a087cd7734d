package service_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"testing"

	"github.com/prometheus/procfs"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// pids records every ffmpeg child the server starts, so tests can check the
// process table.
type pids struct {
	mu   sync.Mutex
	list []int
}

func (p *pids) starter() service.StartEncoder {
	return func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (service.FrameEncoder, error) {
		enc, err := encode.Start(ctx, o, sink)
		if err == nil {
			p.mu.Lock()
			p.list = append(p.list, enc.PID())
			p.mu.Unlock()
		}
		return enc, err
	}
}

func (p *pids) all() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.list...)
}

// waitGone waits until every ffmpeg child recorded so far has left the
// process table.
func (p *pids) waitGone(t *testing.T, what string) {
	t.Helper()
	pids := p.all()
	eventually(t, settle, what, func() string {
		for _, pid := range pids {
			if processExists(pid) {
				return fmt.Sprintf("pid %d alive", pid)
			}
		}
		return ""
	})
}

type renderEnv struct {
	api  whirlv1.AnimationServiceClient
	pids *pids
}

func startRenderer(t *testing.T, cfg service.Config) renderEnv {
	t.Helper()
	if cfg.Leases == nil {
		reg := lease.NewMemory(lease.Config{Capacity: 5})
		t.Cleanup(func() { _ = reg.Close() })
		cfg.Leases = reg
	}
	p := &pids{}
	if cfg.StartEncoder == nil {
		cfg.StartEncoder = p.starter()
	}
	srv := testserver.Start(t, cfg)
	return renderEnv{api: whirlv1.NewAnimationServiceClient(testserver.Dial(t, srv.Addr)), pids: p}
}

func (e renderEnv) acquire(t *testing.T) string {
	t.Helper()
	l, err := e.api.AcquireLease(context.Background(), &whirlv1.AcquireLeaseRequest{Holder: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return l.GetLeaseId()
}

// result is everything one RenderAnimation stream carried.
type result struct {
	header   *whirlv1.RenderHeader
	trailer  *whirlv1.RenderTrailer
	progress []*whirlv1.Progress
	video    []byte
	chunks   int
	err      error
}

// collect reads a stream to its end, checking the event order the contract
// promises: progress may precede the header; chunks follow the header with
// contiguous offsets; the trailer comes last.
func collect(t *testing.T, stream whirlv1.AnimationService_RenderAnimationClient, onChunk func(*whirlv1.MediaChunk)) result {
	t.Helper()
	return collectOnto(t, stream, result{}, onChunk)
}

// collectAfter is collect for a stream resumed after the bytes of prefix,
// which the result's video starts with.
func collectAfter(t *testing.T, stream whirlv1.AnimationService_RenderAnimationClient, prefix []byte, onChunk func(*whirlv1.MediaChunk)) result {
	t.Helper()
	return collectOnto(t, stream, result{video: append([]byte(nil), prefix...)}, onChunk)
}

// collectOnto is collect continuing from what r already holds (events the
// caller read itself).
func collectOnto(t *testing.T, stream whirlv1.AnimationService_RenderAnimationClient, r result, onChunk func(*whirlv1.MediaChunk)) result {
	t.Helper()
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return r
		}
		if err != nil {
			r.err = err
			return r
		}
		if r.trailer != nil {
			t.Errorf("event after trailer: %v", ev)
		}
		switch e := ev.GetEvent().(type) {
		case *whirlv1.RenderAnimationResponse_Header:
			if r.header != nil {
				t.Error("second header")
			}
			r.header = e.Header
		case *whirlv1.RenderAnimationResponse_Progress:
			r.progress = append(r.progress, e.Progress)
		case *whirlv1.RenderAnimationResponse_Chunk:
			c := e.Chunk
			if r.header == nil {
				t.Error("chunk before header")
			}
			if c.GetOffset() != int64(len(r.video)) {
				t.Errorf("chunk offset %d, want %d", c.GetOffset(), len(r.video))
			}
			if n := len(c.GetData()); n == 0 || n > 64<<10 {
				t.Errorf("chunk of %d bytes", n)
			}
			r.video = append(r.video, c.GetData()...)
			r.chunks++
			if onChunk != nil {
				onChunk(c)
			}
		case *whirlv1.RenderAnimationResponse_Trailer:
			r.trailer = e.Trailer
		}
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func smallVideo(seed uint64, frames int32) *whirlv1.RenderAnimationRequest {
	return &whirlv1.RenderAnimationRequest{
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: seed}},
		Video:  &whirlv1.VideoOptions{Width: 160, Height: 120, Fps: 30, Frames: frames, Style: whirlv1.Style_STYLE_WHEELS},
	}
}

func TestRenderAnimationStreamsValidMP4(t *testing.T) {
	env := startRenderer(t, service.Config{})
	req := smallVideo(42, 45)
	req.LeaseId = env.acquire(t)
	stream, err := env.api.RenderAnimation(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, stream, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.header == nil || r.trailer == nil {
		t.Fatalf("header %v trailer %v", r.header, r.trailer)
	}
	info := mp4check.Probe(t, r.video, mp4check.Expect{Width: 160, Height: 120, FPS: 30, Frames: 45})
	if want := `video/mp4; codecs="` + info.Codecs + `"`; r.header.GetMimeType() != want {
		t.Errorf("mime %q, want %q", r.header.GetMimeType(), want)
	}
	if r.trailer.GetTotalBytes() != int64(len(r.video)) || r.trailer.GetSha256() != sha(r.video) || r.trailer.GetFrames() != 45 {
		t.Errorf("trailer %v does not match %d bytes sha %s", r.trailer, len(r.video), sha(r.video))
	}
	if r.header.GetCurve().GetSummary().GetWheels() == 0 || r.header.GetFps() != 30 {
		t.Errorf("header %v", r.header)
	}
	if len(r.progress) == 0 || r.progress[len(r.progress)-1].GetFramesDone() != 45 {
		t.Errorf("progress %v: want a final report of all 45 frames", r.progress)
	}
}

// TestConcurrentRendersKeepTheirOwnCurve is the original system's bug as a
// regression test: five renders at once must each produce exactly what the
// same request produces alone.
func TestConcurrentRendersKeepTheirOwnCurve(t *testing.T) {
	env := startRenderer(t, service.Config{RenderSlots: 5})
	seeds := []uint64{1, 2, 3, 4, 5}
	render := func(seed uint64, leaseID string) (string, error) {
		req := smallVideo(seed, 30)
		req.LeaseId = leaseID
		stream, err := env.api.RenderAnimation(context.Background(), req)
		if err != nil {
			return "", err
		}
		r := collect(t, stream, nil)
		if r.err != nil {
			return "", r.err
		}
		if r.trailer.GetSha256() != sha(r.video) {
			return "", fmt.Errorf("seed %d: trailer checksum mismatch", seed)
		}
		return sha(r.video), nil
	}
	leases := make([]string, len(seeds))
	for i := range leases {
		leases[i] = env.acquire(t)
	}
	solo := map[uint64]string{}
	for i, seed := range seeds {
		s, err := render(seed, leases[i])
		if err != nil {
			t.Fatal(err)
		}
		solo[seed] = s
	}
	together := make([]string, len(seeds))
	var wg sync.WaitGroup
	for i, seed := range seeds {
		wg.Go(func() {
			s, err := render(seed, leases[i])
			if err != nil {
				t.Error(err)
			}
			together[i] = s
		})
	}
	wg.Wait()
	distinct := map[string]bool{}
	for i, seed := range seeds {
		if together[i] != solo[seed] {
			t.Errorf("seed %d: concurrent render differs from its solo render", seed)
		}
		distinct[solo[seed]] = true
	}
	if len(distinct) != len(seeds) {
		t.Errorf("%d distinct videos for %d seeds", len(distinct), len(seeds))
	}
}

// TestCancelMidStream: a client that cancels after its first chunk leaves no
// ffmpeg child and no render goroutine behind, and keeps a usable lease.
func TestCancelMidStream(t *testing.T) {
	env := startRenderer(t, service.Config{})
	leaseID := env.acquire(t)
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := smallVideo(7, 600)
	req.LeaseId = leaseID
	stream, err := env.api.RenderAnimation(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, stream, func(*whirlv1.MediaChunk) { cancel() })
	if status.Code(r.err) != codes.Canceled || r.trailer != nil {
		t.Fatalf("after cancel: err %v trailer %v", r.err, r.trailer)
	}
	if len(env.pids.all()) == 0 {
		t.Fatal("no ffmpeg child started")
	}
	env.pids.waitGone(t, "ffmpeg after cancel")
	noGoroutinesLeft(t, before)
	// The lease survives and can render again.
	if _, err := env.api.RenewLease(context.Background(), &whirlv1.RenewLeaseRequest{LeaseId: leaseID}); err != nil {
		t.Fatalf("lease after cancel: %v", err)
	}
	req = smallVideo(7, 5)
	req.LeaseId = leaseID
	stream, err = env.api.RenderAnimation(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if r := collect(t, stream, nil); r.err != nil || r.trailer == nil {
		t.Fatalf("render after cancel: %v", r.err)
	}
}

// processExists reports whether pid is alive and not a zombie.
func processExists(pid int) bool {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return false
	}
	st, err := p.Stat()
	return err == nil && st.State != "Z"
}

// TestFFmpegKilledMidStream: the stream ends with INTERNAL and no trailer.
func TestFFmpegKilledMidStream(t *testing.T) {
	env := startRenderer(t, service.Config{})
	req := smallVideo(9, 900)
	req.LeaseId = env.acquire(t)
	stream, err := env.api.RenderAnimation(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	killed := false
	r := collect(t, stream, func(*whirlv1.MediaChunk) {
		if !killed {
			killed = true
			for _, pid := range env.pids.all() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if code := status.Code(r.err); code != codes.Internal || r.trailer != nil {
		t.Fatalf("after killing ffmpeg: code %v (%v), trailer %v; want Internal and no trailer", code, r.err, r.trailer)
	}
}

func TestOneRenderPerLease(t *testing.T) {
	env := startRenderer(t, service.Config{})
	leaseID := env.acquire(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := smallVideo(3, 900)
	req.LeaseId = leaseID
	first, err := env.api.RenderAnimation(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Recv(); err != nil { // the render is running
		t.Fatal(err)
	}
	second, err := env.api.RenderAnimation(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if r := collect(t, second, nil); status.Code(r.err) != codes.FailedPrecondition {
		t.Fatalf("second render on a busy lease: %v, want FailedPrecondition", r.err)
	}
}

func TestQueuedRenderSeesItsPosition(t *testing.T) {
	env := startRenderer(t, service.Config{RenderSlots: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	busy := smallVideo(3, 900)
	busy.LeaseId = env.acquire(t)
	first, err := env.api.RenderAnimation(ctx, busy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Recv(); err != nil {
		t.Fatal(err)
	}
	queued := smallVideo(4, 5)
	queued.LeaseId = env.acquire(t)
	second, err := env.api.RenderAnimation(context.Background(), queued)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := second.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if p := ev.GetProgress(); p == nil || p.GetQueuePosition() != 1 {
		t.Fatalf("first event of a queued render: %v, want progress with queue position 1", ev)
	}
	cancel() // frees the slot
	if r := collect(t, second, nil); r.err != nil || r.trailer == nil {
		t.Fatalf("queued render after the slot freed: %v", r.err)
	}
}

func TestRenderUnavailableWithoutFFmpeg(t *testing.T) {
	env := startRenderer(t, service.Config{EncoderErr: encode.ErrFFmpegNotFound})
	req := smallVideo(1, 5)
	req.LeaseId = env.acquire(t)
	stream, err := env.api.RenderAnimation(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if r := collect(t, stream, nil); status.Code(r.err) != codes.Unavailable {
		t.Fatalf("render without ffmpeg: %v, want Unavailable", r.err)
	}
}

// TestRenderAnimationBadInput: every bound, just past it, is refused with the
// right field before any lease is touched or any work starts.
func TestRenderAnimationBadInput(t *testing.T) {
	env := startRenderer(t, service.Config{MaxPixelFrames: 640 * 480 * 100})
	leaseID := env.acquire(t)
	gen := &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 1}}
	video := func(w, h, fps, frames int32) *whirlv1.VideoOptions {
		return &whirlv1.VideoOptions{Width: w, Height: h, Fps: fps, Frames: frames}
	}
	tests := []struct {
		name  string
		req   *whirlv1.RenderAnimationRequest
		field string
	}{
		{"no lease", &whirlv1.RenderAnimationRequest{Source: gen}, "lease_id"},
		{"malformed lease", &whirlv1.RenderAnimationRequest{LeaseId: "xyz", Source: gen}, "lease_id"},
		{"no source", &whirlv1.RenderAnimationRequest{LeaseId: leaseID}, "source"},
		{"width too small", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: gen, Video: video(62, 64, 30, 10)}, "video.width"},
		{"width too large", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: gen, Video: video(1922, 64, 30, 10)}, "video.width"},
		{"odd height", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: gen, Video: video(64, 65, 30, 10)}, "video.height"},
		{"fps too high", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: gen, Video: video(64, 64, 61, 10)}, "video.fps"},
		{"negative fps", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: gen, Video: video(64, 64, -1, 10)}, "video.fps"},
		{"too many frames", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: gen, Video: video(64, 64, 30, 3601)}, "video.frames"},
		{"over pixel budget", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: gen, Video: video(640, 480, 30, 101)}, "video"},
		{"bad colour", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: gen, Video: &whirlv1.VideoOptions{Appearance: &whirlv1.Appearance{Pen: "red"}}}, "video.appearance.pen"},
		{"bad style", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: gen, Video: &whirlv1.VideoOptions{Style: 9}}, "video.style"},
		{"too many wheels", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Wheels: 100}}}, "generate.wheels"},
		{"NaN radius", &whirlv1.RenderAnimationRequest{LeaseId: leaseID, Source: &whirlv1.RenderAnimationRequest_Curve{Curve: &whirlv1.Curve{
			KFold: 3, Congruency: 1, Wheels: []*whirlv1.Wheel{{Radius: nan(), Frequency: 1, Shape: whirlv1.Shape_SHAPE_CIRCLE}},
		}}}, "curve.wheels[0].radius"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := env.api.RenderAnimation(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			r := collect(t, stream, nil)
			assertFieldViolation(t, r.err, tt.field)
		})
	}
	if n := len(env.pids.all()); n != 0 {
		t.Errorf("%d ffmpeg children started for invalid requests", n)
	}
}
