package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/service"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// TestManyStreamsWithCancelsAndDeadlines proves that 200 small renders
// (64×64, 20-60 frames, 5 leases, 2 render slots, 10 client goroutines
// sharing the leases) ending every way a client can end them — to
// completion, cancelled after a random number of chunks, or cut by a random
// deadline, which expires before the call, while queued for a render slot
// or mid-render — leave nothing behind: no goroutine, no ffmpeg child (nor
// anything in its process group), no held render slot, no pinned or lost
// lease, no retained heap or RSS, and every lease renders again afterwards.
// Every stream ends either with a trailer whose checksum matches, or with
// the status its own ending explains (CANCELED, DEADLINE_EXCEEDED;
// FAILED_PRECONDITION while the server is still unpinning the lease after
// the client saw its stream end, which is retried); nothing ends INTERNAL,
// and nothing ends with EOF but no trailer. A deterministic tail makes sure
// a deadline expiring in the queue is among them (TestStuckClientStallsPipeline
// covers a deadline expiring mid-render).
func TestManyStreamsWithCancelsAndDeadlines(t *testing.T) {
	const (
		streams   = 200
		inFlight  = 10
		numLeases = 5
	)
	h := startHarness(t, service.Config{RenderSlots: 2}, numLeases, nil)
	leases := h.acquireN(t, numLeases)

	// Warm up (first ffmpeg start, lazily built grpc/codec state) so that
	// the baselines below are not taken from a cold process.
	if r := collect(t, mustStream(t, h, context.Background(), tinyVideo(leases[0].token, 1, 5)), nil); r.trailer == nil {
		t.Fatalf("warm-up render: %v", r.err)
	}
	h.assertQuiescent(t, leases)
	before := goleak.IgnoreCurrent()
	baseHeap := heapInuse()
	baseRSS := vmRSS(t)

	type mode int
	const (
		finish mode = iota
		cancelAfterChunks
		deadline
	)
	type job struct {
		req      *whirlv1.RenderAnimationRequest
		mode     mode
		chunks   int
		deadline time.Duration
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("job seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	jobs := make(chan job, streams)
	for i := range streams {
		j := job{req: tinyVideo("", rng.Uint64(), int32(20+rng.IntN(41)))}
		switch x := rng.IntN(20); {
		case x < 3:
			j.mode = finish
		case x < 9:
			j.mode, j.chunks = cancelAfterChunks, 1+rng.IntN(4)
		default:
			// 5ms can end before the call is sent; 500ms can outlive a
			// render or expire while it waits for a slot.
			j.mode, j.deadline = deadline, time.Duration(5+rng.IntN(500))*time.Millisecond
		}
		// Mostly the cheaper trace style: ffmpeg's start-up dominates anyway.
		if i%4 != 0 {
			j.req.Video.Style = whirlv1.Style_STYLE_TRACE
		}
		jobs <- j
	}
	close(jobs)

	var (
		mu       sync.Mutex
		outcomes = map[string]int{}
	)
	count := func(s string) {
		mu.Lock()
		outcomes[s]++
		mu.Unlock()
	}
	// runJob runs one stream to its end and classifies how it ended; it
	// reports whether the lease was busy.
	runJob := func(j job) (busy bool) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if j.mode == deadline {
			ctx, cancel = context.WithTimeout(ctx, j.deadline)
			defer cancel()
		}
		stream, err := h.api.RenderAnimation(ctx, j.req)
		if err != nil {
			if c := status.Code(err); c != codes.DeadlineExceeded || j.mode != deadline {
				t.Errorf("opening stream: %v", err)
			}
			count("deadline before the call")
			return false
		}
		chunks := 0
		r := collect(t, stream, func(*whirlv1.MediaChunk) {
			chunks++
			if j.mode == cancelAfterChunks && chunks == j.chunks {
				cancel()
			}
		})
		queued := false
		for _, p := range r.progress {
			queued = queued || p.GetQueuePosition() > 0
		}
		code := status.Code(r.err)
		switch {
		case r.err == nil && r.trailer == nil:
			t.Errorf("stream ended cleanly without a trailer (%d chunks)", r.chunks)
		case r.err == nil:
			if r.header == nil || r.trailer.GetSha256() != sha(r.video) || r.trailer.GetFrames() != j.req.GetVideo().GetFrames() {
				t.Errorf("complete stream: header %v, trailer %v does not match %d bytes", r.header, r.trailer, len(r.video))
			}
			count("complete")
		case r.trailer != nil:
			t.Errorf("error %v after a trailer", r.err)
		case code == codes.FailedPrecondition && r.header == nil:
			return true
		case code == codes.Canceled && j.mode == cancelAfterChunks:
			count("cancelled mid-stream")
		case code == codes.DeadlineExceeded && j.mode == deadline:
			switch {
			case r.header != nil:
				count("deadline mid-render")
			case queued:
				count("deadline while queued")
			default:
				count("deadline before the first event")
			}
		default:
			t.Errorf("mode %d stream ended %v (code %v) after %d chunks", j.mode, r.err, code, r.chunks)
		}
		return false
	}
	// Each stream takes a lease from the pool and gives it back when it has
	// ended on the client's side; the server may unpin it a moment later,
	// so FAILED_PRECONDITION (lease busy) is retried with the same job once
	// the server has let go of that lease.
	began := time.Now()
	pool := make(chan heldLease, numLeases)
	for _, l := range leases {
		pool <- l
	}
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for j := range jobs {
				for {
					l := <-pool
					j.req.LeaseId = l.token
					busy := runJob(j)
					if busy {
						h.waitNotRendering(t, l)
					}
					pool <- l
					if !busy {
						break
					}
					count("lease busy, retried")
				}
			}
		})
	}
	wg.Wait()

	t.Logf("%d streams in %v, %d ffmpeg children", streams, time.Since(began).Round(time.Millisecond), len(h.pids.all()))
	keys := make([]string, 0, len(outcomes))
	for k := range outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%-32s %d", k, outcomes[k])
	}
	for _, k := range []string{"complete", "cancelled mid-stream", "deadline while queued"} {
		if outcomes[k] == 0 {
			t.Errorf("no stream ended %q: the mix did not exercise that path (outcomes %v)", k, outcomes)
		}
	}

	// Where a random deadline expires depends on timing; make sure of the
	// queued case (TestStuckClientStallsPipeline makes sure of the
	// mid-render one): two long renders hold both slots while a third
	// stream waits behind them until its deadline expires in the queue.
	eventually(t, 10*time.Second, "render slots before the queue check", func() string {
		if run, q := h.srv.RenderStats(); run != 0 || q != 0 {
			return fmt.Sprintf("%d running, %d queued", run, q)
		}
		return ""
	})
	holdCtx, release := context.WithCancel(context.Background())
	holders := make(chan result, 2)
	for i := range 2 {
		// Two different videos: identical ones would share one render.
		stream := mustStream(t, h, holdCtx, tinyVideo(leases[i].token, uint64(5+i), 3600))
		go func() { holders <- collect(t, stream, nil) }()
	}
	eventually(t, 10*time.Second, "long renders taking both slots", func() string {
		if run, _ := h.srv.RenderStats(); run != 2 {
			return fmt.Sprintf("%d running", run)
		}
		return ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	queued := collect(t, mustStream(t, h, ctx, tinyVideo(leases[2].token, 7, 20)), nil)
	cancel()
	if status.Code(queued.err) != codes.DeadlineExceeded || queued.header != nil || len(queued.progress) == 0 || queued.progress[0].GetQueuePosition() != 1 {
		t.Errorf("stream queued behind two long renders: %v, header %v, progress %v; want DeadlineExceeded while at queue position 1",
			queued.err, queued.header, queued.progress)
	}
	release()
	for range 2 {
		if r := <-holders; status.Code(r.err) != codes.Canceled || r.trailer != nil {
			t.Errorf("long render: %v, trailer %v; want Canceled", r.err, r.trailer)
		}
	}
	if n := len(h.pids.all()); n < 50 {
		t.Errorf("only %d ffmpeg children started for %d streams", n, streams)
	}

	h.assertQuiescent(t, leases)
	noGoroutinesLeft(t, before)
	if heap := heapInuse(); heap > baseHeap+32*mib {
		t.Errorf("HeapInuse %d MiB after the run, baseline %d MiB", heap/mib, baseHeap/mib)
	}
	if rss := vmRSS(t); rss > baseRSS+512*mib {
		t.Errorf("VmRSS %d MiB after the run, baseline %d MiB", rss/mib, baseRSS/mib)
	}
	// The server still renders on every lease.
	for _, l := range leases {
		if r := collect(t, mustStream(t, h, context.Background(), tinyVideo(l.token, 2, 5)), nil); r.trailer == nil {
			t.Errorf("render on lease %s after the run: %v", l.handle, r.err)
		}
	}
}

func mustStream(t *testing.T, h harness, ctx context.Context, req *whirlv1.RenderAnimationRequest) whirlv1.AnimationService_RenderAnimationClient {
	t.Helper()
	s, err := h.api.RenderAnimation(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStuckClientNeverStallsTheRender proves that a client that reads the
// header and then stops reading holds up neither the render nor another
// client of the same video, and costs the server bounded memory: the render
// spills to a file, not to the heap. The render ends and frees its slot
// while the stuck stream is still open; cancelling that stream then frees
// its lease.
func TestStuckClientNeverStallsTheRender(t *testing.T) {
	const frames = 300
	var written atomic.Int64
	// CRF 1 makes every frame big: the video is several times the
	// flow-control windows between the server and a client.
	h := startHarness(t, service.Config{RenderSlots: 1, Encode: encode.Options{CRF: 1}}, 2, func(enc service.FrameEncoder, _ encode.Options) service.FrameEncoder {
		return countingEncoder{enc, &written, nil}
	})
	leases := h.acquireN(t, 2)
	baseHeap := heapInuse()
	req := func(lease string) *whirlv1.RenderAnimationRequest {
		return &whirlv1.RenderAnimationRequest{
			LeaseId: lease,
			Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 77}},
			Video:   &whirlv1.VideoOptions{Width: 320, Height: 240, Fps: 2, Frames: frames},
		}
	}
	// A client with a fixed 64 KiB window (no BDP growth) is the slowest
	// kind to fill.
	conn, err := grpc.NewClient(h.srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stuckCtx, stopStuck := context.WithCancel(context.Background())
	defer stopStuck()
	stuck, err := whirlv1.NewAnimationServiceClient(conn).RenderAnimation(stuckCtx, req(leases[0].token))
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := stuck.Recv()
		if err != nil {
			t.Fatalf("before the header: %v", err)
		}
		if ev.GetHeader() != nil {
			break
		}
	}
	// The stuck client now stops reading; another reads the same video.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reader := collect(t, mustStream(t, h, ctx, req(leases[1].token)), nil)
	if reader.err != nil || reader.trailer == nil || reader.trailer.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_SHARED {
		t.Fatalf("client beside a stuck one: %v, trailer %v; want the whole video, SHARED", reader.err, reader.trailer)
	}
	heap := heapInuse()
	t.Logf("video %d KiB; heap %+d KiB with a client stuck at the header", len(reader.video)>>10, (int64(heap)-int64(baseHeap))>>10)
	if heap > baseHeap+32*mib {
		t.Errorf("HeapInuse grew from %d to %d MiB while a client was stuck", baseHeap/mib, heap/mib)
	}
	if n := written.Load(); n != frames {
		t.Errorf("%d of %d frames encoded", n, frames)
	}
	eventually(t, 5*time.Second, "render slot freed while the stuck stream is open", func() string {
		if run, _ := h.srv.RenderStats(); run != 0 {
			return fmt.Sprintf("%d running", run)
		}
		return ""
	})
	stopStuck()
	for {
		ev, err := stuck.Recv()
		if ev.GetTrailer() != nil {
			t.Error("stuck stream got a trailer")
		}
		if err != nil {
			if status.Code(err) != codes.Canceled {
				t.Errorf("stuck stream ended %v, want Canceled", err)
			}
			break
		}
	}
	h.assertQuiescent(t, leases)
}
