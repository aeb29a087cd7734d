package loadrun

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// render streams one animation through the client's StreamVerifier (one
// header before any chunk, chunks contiguous from offset 0, a trailer last
// whose size, SHA-256 and frames match what arrived, nothing after it) and
// checks on top what a load run needs: a header describing the request, at
// least one media fragment after the init segment, and no event the
// contract does not define. It records the first-fragment and total times.
func (r *loadRun) render(api whirlv1.AnimationServiceClient, leaseID string, rng *rand.Rand, st *clientStats) error {
	ctx, cancel := context.WithTimeout(r.hardCtx, r.cfg.RenderTimeout)
	defer cancel()
	cfg := r.cfg
	req := &whirlv1.RenderAnimationRequest{
		LeaseId: leaseID,
		Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: rng.Uint64()}},
		Video: &whirlv1.VideoOptions{
			Width: int32(cfg.Width), Height: int32(cfg.Height), Fps: int32(cfg.FPS), Frames: int32(cfg.Frames),
		},
	}
	start := time.Now()
	stream, err := api.RenderAnimation(ctx, req)
	if err != nil {
		s := status.Convert(err)
		return fail(failRenderStart, "RenderAnimation: %s: %s", s.Code(), s.Message())
	}
	v := client.NewStreamVerifier(io.Discard)
	var firstFragment, total time.Duration
	err = v.Receive(stream, func(ev *whirlv1.RenderAnimationResponse) error {
		switch e := ev.GetEvent().(type) {
		case *whirlv1.RenderAnimationResponse_Progress:
			st.maxQueue = max(st.maxQueue, int(e.Progress.GetQueuePosition()))
		case *whirlv1.RenderAnimationResponse_Header:
			return r.checkHeader(e.Header)
		case *whirlv1.RenderAnimationResponse_Chunk:
			if e.Chunk.GetSegmentEnd() && v.Segments() == 2 { // the first ends the init segment
				firstFragment = time.Since(start)
			}
		case *whirlv1.RenderAnimationResponse_Trailer:
			total = time.Since(start)
		default:
			return fail(failOrder, "unknown event %T", e)
		}
		return nil
	})
	if err != nil {
		return streamFailure(err, v.Size())
	}
	if v.Segments() < 2 {
		return fail(failNoFragment, "%d segment ends: no media fragment after the init segment", v.Segments())
	}
	st.firstFragment = append(st.firstFragment, firstFragment)
	st.renderTotal = append(st.renderTotal, total)
	st.bytes += v.Size()
	return nil
}

// checkHeader checks that the header describes the video asked for.
func (r *loadRun) checkHeader(h *whirlv1.RenderHeader) error {
	c := r.cfg
	if h.GetWidth() != int32(c.Width) || h.GetHeight() != int32(c.Height) || h.GetFps() != int32(c.FPS) || h.GetFrames() != int32(c.Frames) {
		return fail(failHeader, "header %dx%d %d fps %d frames, asked %dx%d %d fps %d frames",
			h.GetWidth(), h.GetHeight(), h.GetFps(), h.GetFrames(), c.Width, c.Height, c.FPS, c.Frames)
	}
	return nil
}

// streamFailure sorts a failed stream into the report's failure kinds.
func streamFailure(err error, received int64) error {
	var ce *cycleError
	if errors.As(err, &ce) {
		return ce
	}
	if s, ok := status.FromError(err); ok {
		return fail(failStatus, "stream ended with %s: %s (after %d bytes)", s.Code(), s.Message(), received)
	}
	kind := failOrder
	switch {
	case errors.Is(err, client.ErrTruncated):
		kind = failNoTrailer
	case errors.Is(err, client.ErrOutOfOrder):
		kind = failOffset
	case errors.Is(err, client.ErrChecksumMismatch):
		kind = failSHA
	case errors.Is(err, client.ErrSizeMismatch):
		kind = failTotal
	}
	return fail(kind, "%v", err)
}
