package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/whirl-dev/whirl/client"
)

// progressBar draws a render's progress on one terminal line: the lease
// wait, the queue position, then a bar with frames, bytes and ETA.
type progressBar struct {
	w           io.Writer
	now         func() time.Time
	start       time.Time
	renderStart time.Time
	lastDraw    time.Time
	lastPhase   client.Phase
	drawn       bool
}

// redrawEvery throttles redraws while rendering.
const redrawEvery = 100 * time.Millisecond

const barWidth = 24

func newProgressBar(w io.Writer, now func() time.Time) *progressBar {
	return &progressBar{w: w, now: now, start: now()}
}

// update redraws the line for p; a nil bar does nothing.
func (b *progressBar) update(p client.Progress) {
	if b == nil {
		return
	}
	t := b.now()
	if p.Phase == client.PhaseRendering && b.renderStart.IsZero() {
		b.renderStart = t
	}
	// Lease and queue events are rare and each says something new; frame
	// progress is throttled.
	if b.drawn && p.Phase == client.PhaseRendering && b.lastPhase == client.PhaseRendering && t.Sub(b.lastDraw) < redrawEvery {
		return
	}
	b.lastPhase, b.lastDraw, b.drawn = p.Phase, t, true
	fmt.Fprint(b.w, "\r\x1b[K"+b.line(p, t))
}

// finish ends the line, leaving the last state visible.
func (b *progressBar) finish() {
	if b != nil && b.drawn {
		fmt.Fprintln(b.w)
	}
}

func (b *progressBar) line(p client.Progress, t time.Time) string {
	switch p.Phase {
	case client.PhaseLease:
		if p.RetryIn > 0 {
			return fmt.Sprintf("every lease is in use; retrying in %s (attempt %d)", p.RetryIn.Round(100*time.Millisecond), p.Attempt)
		}
		if p.Attempt > 1 {
			return fmt.Sprintf("acquiring a lease (attempt %d)...", p.Attempt)
		}
		return "acquiring a lease..."
	case client.PhaseQueued:
		return fmt.Sprintf("queued for a render slot: position %d", p.QueuePosition)
	case client.PhaseResuming:
		return fmt.Sprintf("stream broken at %s; reconnecting in %s (retry %d)", humanBytes(p.Bytes), p.RetryIn.Round(10*time.Millisecond), p.Retry)
	}
	filled, pct := 0, 0
	if p.FramesTotal > 0 {
		filled = min(barWidth, p.FramesDone*barWidth/p.FramesTotal)
		pct = min(100, p.FramesDone*100/p.FramesTotal)
	}
	s := fmt.Sprintf("[%s%s] %3d%%  %d/%d frames  %s", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled),
		pct, p.FramesDone, p.FramesTotal, humanBytes(p.Bytes))
	if p.Phase == client.PhaseDone {
		return s + "  in " + t.Sub(b.start).Round(100*time.Millisecond).String()
	}
	if p.FramesDone > 0 && p.FramesDone < p.FramesTotal && !b.renderStart.IsZero() {
		elapsed := t.Sub(b.renderStart)
		eta := time.Duration(float64(elapsed) * float64(p.FramesTotal-p.FramesDone) / float64(p.FramesDone))
		s += "  ETA " + eta.Round(time.Second).String()
	}
	return s
}

// humanBytes formats n in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}
