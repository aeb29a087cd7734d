package service_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// renderOnce renders req on a fresh lease, released after, and returns the
// checked stream.
func (e renderEnv) renderOnce(t *testing.T, req *whirlv1.RenderAnimationRequest) (result, error) {
	t.Helper()
	req.LeaseId = e.acquire(t)
	defer func() {
		if _, err := e.api.ReleaseLease(context.Background(), &whirlv1.ReleaseLeaseRequest{LeaseId: req.LeaseId}); err != nil {
			t.Errorf("release: %v", err)
		}
	}()
	stream, err := e.api.RenderAnimation(context.Background(), req)
	if err != nil {
		return result{}, err
	}
	r := collect(t, stream, nil)
	if r.err == nil && (r.trailer == nil || r.trailer.GetSha256() != sha(r.video)) {
		return r, fmt.Errorf("trailer %v does not match the %d bytes received", r.trailer, len(r.video))
	}
	return r, r.err
}

// TestSegmentedRenderIdenticalAtAnyParallelism: a video cut into segments
// (GOP 150 at 30 fps) plays as one file — every frame, timestamps one frame
// apart, the right duration — for frame counts on, just before and just
// after a segment boundary and for one frame, and its bytes are the same
// whether the server encodes 1, 2 or 4 segments at once, and beside five
// other renders.
func TestSegmentedRenderIdenticalAtAnyParallelism(t *testing.T) {
	envs := map[int]renderEnv{}
	for _, p := range []int{1, 2, 4} {
		reg := lease.NewMemory(lease.Config{Capacity: 10})
		t.Cleanup(func() { _ = reg.Close() })
		envs[p] = startRenderer(t, service.Config{Leases: reg, EncodeParallelism: p, RenderSlots: 6, RenderWorkers: 1})
	}
	want := map[int32]string{}
	for _, frames := range []int32{1, 149, 150, 151, 301} {
		t.Run(fmt.Sprintf("frames=%d", frames), func(t *testing.T) {
			for _, p := range []int{1, 2, 4} {
				r, err := envs[p].renderOnce(t, smallVideo(11, frames))
				if err != nil {
					t.Fatalf("parallelism %d: %v", p, err)
				}
				if p == 1 {
					want[frames] = sha(r.video)
					mp4check.Probe(t, r.video, mp4check.Expect{Width: 160, Height: 120, FPS: 30, Frames: int(frames), Timestamps: true})
				} else if sha(r.video) != want[frames] {
					t.Errorf("parallelism %d: %d bytes, sha %s; parallelism 1 gave sha %s", p, len(r.video), sha(r.video), want[frames])
				}
			}
		})
	}

	// beside five other renders, on the server with 2 encoders
	env := envs[2]
	got := make([]string, 6)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			r, err := env.renderOnce(t, smallVideo(11+uint64(i), 301))
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = sha(r.video)
		})
	}
	wg.Wait()
	if got[0] != want[301] {
		t.Errorf("beside five other renders: sha %s, alone %s", got[0], want[301])
	}
	if n := len(env.pids.all()); n < 6*3 {
		t.Errorf("%d encoders started for the renders of 3 segments each, want at least %d", n, 6*3)
	}
}

// TestSegmentedCancelStopsEveryEncoder: cancelling a stream while several
// of its segments are encoding leaves no ffmpeg of any segment and no
// goroutine behind.
func TestSegmentedCancelStopsEveryEncoder(t *testing.T) {
	env := startRenderer(t, service.Config{EncodeParallelism: 4})
	leaseID := env.acquire(t)
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := smallVideo(7, 1200) // 8 segments
	req.LeaseId = leaseID
	stream, err := env.api.RenderAnimation(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, stream, func(*whirlv1.MediaChunk) {
		if len(env.pids.all()) >= 3 {
			cancel()
		}
	})
	if status.Code(r.err) != codes.Canceled || r.trailer != nil {
		t.Fatalf("after cancel: err %v trailer %v", r.err, r.trailer)
	}
	if n := len(env.pids.all()); n < 3 {
		t.Fatalf("%d encoders started before the cancel, want 3 or more", n)
	}
	env.pids.waitGone(t, "ffmpeg after cancel")
	noGoroutinesLeft(t, before)
}

// TestFFmpegKilledInSegment2: killing the ffmpeg of the third segment fails
// the stream with INTERNAL and no trailer, after the first two segments
// streamed, and leaves no ffmpeg, slot or pinned lease behind.
func TestFFmpegKilledInSegment2(t *testing.T) {
	var started atomic.Int32
	// One encoder at a time: segments start in order, the third is segment 2.
	h := startHarness(t, service.Config{EncodeParallelism: 1}, 1, func(enc service.FrameEncoder, _ encode.Options) service.FrameEncoder {
		if started.Add(1) == 3 {
			return &killAfter{Encoder: enc.(*encode.Encoder), frames: 5}
		}
		return enc
	})
	leases := h.acquireN(t, 1)
	req := smallVideo(5, 400) // segments of 134, 133 and 133 frames
	req.LeaseId = leases[0].token
	r := collect(t, mustStream(t, h, context.Background(), req), nil)
	if code := status.Code(r.err); code != codes.Internal || r.trailer != nil {
		t.Fatalf("after killing segment 2's ffmpeg: code %v (%v), trailer %v; want Internal and no trailer", code, r.err, r.trailer)
	}
	if len(r.video) == 0 {
		t.Error("nothing streamed before segment 2 failed")
	}
	if n := started.Load(); n != 3 {
		t.Errorf("%d encoders started, want 3 (none after the failure)", n)
	}
	h.assertQuiescent(t, leases)
}

// killAfter is an encoder whose ffmpeg is killed (SIGKILL) before its
// frames+1-th frame.
type killAfter struct {
	*encode.Encoder
	frames  int
	written int
}

func (k *killAfter) WriteFrame(yuv []byte) error {
	if k.written == k.frames {
		if err := syscall.Kill(k.PID(), syscall.SIGKILL); err != nil {
			return err
		}
	}
	k.written++
	return k.Encoder.WriteFrame(yuv)
}
