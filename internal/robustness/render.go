package robustness

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// renderTimeout bounds one render stream.
const renderTimeout = 30 * time.Second

// resumePoint is how much of which video a client got before it
// cancelled, to continue later.
type resumePoint struct {
	seed    uint64
	frames  int32
	videoID string
	offset  int64
}

// renderPlan is what the client does to a render once its header came.
type renderPlan struct {
	cancelAfter  time.Duration // 0: read to the end
	releaseAfter time.Duration // < 0: keep the lease
}

// renderSome resumes an interrupted video, or starts a new one; some are
// cancelled part-way, and some lose their lease part-way (the client
// releases it while the render runs).
func (c *client) renderSome(ctx context.Context) {
	rp := c.resume
	c.resume = nil
	if rp == nil || c.rng.IntN(100) < 30 {
		v := c.t.Video
		rp = &resumePoint{seed: c.rng.Uint64(), frames: v.MinFrames + c.rng.Int32N(v.MaxFrames-v.MinFrames+1)}
	}
	plan := renderPlan{releaseAfter: -1}
	switch w := c.rng.IntN(100); {
	case w < 35:
		plan.cancelAfter = time.Duration(50+c.rng.IntN(700)) * time.Millisecond
	case w < 60:
		plan.releaseAfter = time.Duration(c.rng.IntN(400)) * time.Millisecond
	}
	next, out := c.render(ctx, c.replica(), rp, plan)
	c.resume = next
	switch {
	case plan.releaseAfter >= 0, out.Result == ResultNotFound:
		c.lease = nil
	}
}

// render streams one video under the held lease and records it.
func (c *client) render(ctx context.Context, r *Replica, rp *resumePoint, plan renderPlan) (*resumePoint, Output) {
	v := c.t.Video
	req := &whirlv1.RenderAnimationRequest{
		LeaseId: c.lease.id,
		Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: rp.seed}},
		Video:   &whirlv1.VideoOptions{Width: v.Width, Height: v.Height, Fps: v.FPS, Frames: rp.frames},
	}
	if rp.videoID != "" {
		req.Resume = &whirlv1.Resume{VideoId: rp.videoID, Offset: rp.offset}
	}
	done := c.rec.Begin(c.id, Input{Kind: KindRender, Replica: r.Index, LeaseID: c.lease.id, Resume: req.Resume != nil})
	sctx, cancel := context.WithTimeout(ctx, renderTimeout)
	defer cancel()
	var (
		side      sync.WaitGroup
		cancelled bool
		mu        sync.Mutex
	)
	defer side.Wait()
	// reading ends when the stream does: a cancel planned for later is moot.
	reading, stopReading := context.WithCancel(sctx)
	onHeader := func() {
		if plan.cancelAfter > 0 {
			side.Go(func() {
				sleep(reading, plan.cancelAfter)
				mu.Lock()
				cancelled = reading.Err() == nil
				mu.Unlock()
				cancel()
			})
		}
		if plan.releaseAfter >= 0 {
			id, rr := c.lease.id, c.replica() // the rng is not shared with the goroutine
			side.Go(func() {
				sleep(sctx, plan.releaseAfter)
				c.release(context.WithoutCancel(ctx), rr, id)
			})
		}
	}
	next := &streamState{resumePoint: *rp}
	out, err := c.readStream(sctx, r, req, next, onHeader)
	stopReading()
	mu.Lock()
	if cancelled {
		out = Output{Result: ResultEnded, Code: codes.Canceled.String(), Err: "cancelled by the client"}
	}
	mu.Unlock()
	out.LastEvent = next.lastEvent
	done(out)
	if err == nil || next.videoID == "" || next.offset == 0 {
		return nil, out
	}
	return &next.resumePoint, out
}

// streamState is what a render stream delivered so far.
type streamState struct {
	resumePoint
	lastEvent int64
}

// errNoTrailer is a stream that ended cleanly without its trailer.
var errNoTrailer = errors.New("stream ended without a trailer")

// readStream runs the call and reads it to its end, keeping st up to date.
func (c *client) readStream(ctx context.Context, r *Replica, req *whirlv1.RenderAnimationRequest, st *streamState, onHeader func()) (Output, error) {
	stream, err := r.API.RenderAnimation(ctx, req)
	if err != nil {
		return renderOutcome(err), err
	}
	trailer := false
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if trailer {
				return Output{Result: ResultOK}, nil
			}
			return Output{Result: ResultEnded, Err: errNoTrailer.Error()}, errNoTrailer
		}
		if err != nil {
			return renderOutcome(err), err
		}
		st.lastEvent = c.rec.Now()
		switch {
		case ev.GetHeader() != nil:
			st.videoID = ev.GetHeader().GetVideoId()
			onHeader()
		case ev.GetChunk() != nil:
			st.offset = ev.GetChunk().GetOffset() + int64(len(ev.GetChunk().GetData()))
		case ev.GetTrailer() != nil:
			trailer = true
		}
	}
}

// renderOutcome classifies a render's error: a stream that ran and broke
// has ended, whatever the cause; refusals and a lease not found stand.
func renderOutcome(err error) Output {
	out := outcome(err)
	if out.Result == ResultUnknown {
		out.Result = ResultEnded
	}
	return out
}
