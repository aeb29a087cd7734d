package service_test

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/service"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// BenchmarkReleaseToSlotFree measures, during a render, the time from
// ReleaseLease being sent to a waiting AcquireLease being granted the slot:
// the render stopped, its encoders reaped, the slot handed on. It reports
// the p50 and p99 over the iterations (run with -benchtime=50x).
func BenchmarkReleaseToSlotFree(b *testing.B) {
	e := startLeaseEnv(b, 1, service.Config{})
	var took []time.Duration
	seed := uint64(100)
	for b.Loop() {
		seed++
		l, err := e.api.AcquireLease(b.Context(), &whirlv1.AcquireLeaseRequest{Holder: "render"})
		if err != nil {
			b.Fatal(err)
		}
		stream := e.startLongRender(b, b.Context(), l.GetLeaseId(), seed)
		granted := make(chan time.Time, 1)
		go func() {
			next, err := e.api.AcquireLease(context.Background(), &whirlv1.AcquireLeaseRequest{Holder: "next", Wait: true})
			if err != nil {
				b.Error(err)
			}
			at := time.Now()
			_, _ = e.api.ReleaseLease(context.Background(), &whirlv1.ReleaseLeaseRequest{LeaseId: next.GetLeaseId()})
			granted <- at
		}()
		for s, _ := e.reg.List(b.Context()); s.Waiting != 1; s, _ = e.reg.List(b.Context()) {
			time.Sleep(time.Millisecond)
		}
		sent := time.Now()
		if _, err := e.api.ReleaseLease(b.Context(), &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()}); err != nil {
			b.Fatal(err)
		}
		took = append(took, (<-granted).Sub(sent))
		for _, err := stream.Recv(); err == nil; _, err = stream.Recv() {
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(took[(len(took)*99)/100].Microseconds())/1e3, "p99-ms")
}

// BenchmarkResumeCost compares the CPU (this process and its reaped
// children: drawing and ffmpeg) of a 900-frame render streamed whole with
// the same video cut at half its bytes and resumed at once with the same
// lease, within the orphan grace. It reports the ratio (1 = no extra cost).
func BenchmarkResumeCost(b *testing.B) {
	for _, grace := range []time.Duration{0, time.Minute} {
		b.Run("orphan-grace="+grace.String(), func(b *testing.B) {
			e := startLeaseEnv(b, 1, service.Config{OrphanGrace: grace})
			l, err := e.api.AcquireLease(b.Context(), &whirlv1.AcquireLeaseRequest{Holder: "resume"})
			if err != nil {
				b.Fatal(err)
			}
			var whole, resumed float64
			seed := uint64(500)
			for b.Loop() {
				seed += 2
				start := cpuSeconds()
				full := renderWhole(b, e, l.GetLeaseId(), seed, nil)
				whole += cpuSeconds() - start
				start = cpuSeconds()
				renderWhole(b, e, l.GetLeaseId(), seed+1, func(got int) bool { return got >= len(full)/2 })
				resumed += cpuSeconds() - start
			}
			b.ReportMetric(resumed/whole, "cpu-resumed/whole")
		})
	}
}

// renderWhole streams a 900-frame video to its end; when cut returns true
// for the bytes so far, it cuts the stream there and resumes it.
func renderWhole(b *testing.B, e leaseEnv, leaseID string, seed uint64, cut func(int) bool) []byte {
	req := smallVideo(seed, 900)
	req.LeaseId = leaseID
	var video []byte
	for {
		ctx, cancel := context.WithCancel(b.Context())
		stream, err := e.api.RenderAnimation(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			ev, err := stream.Recv()
			if err != nil {
				cancel()
				if status.Code(err) == codes.FailedPrecondition {
					break // the cut call still holds the lease: ask again
				}
				if status.Code(err) != codes.Canceled {
					b.Fatal(err)
				}
				break
			}
			if h := ev.GetHeader(); h != nil && req.Resume == nil {
				req.Resume = &whirlv1.Resume{VideoId: h.GetVideoId()}
			}
			video = append(video, ev.GetChunk().GetData()...)
			if ev.GetTrailer() != nil {
				cancel()
				return video
			}
			if cut != nil && cut(len(video)) {
				cut = nil
				cancel()
			}
		}
		if req.Resume != nil {
			req.Resume.Offset = int64(len(video))
		}
	}
}

func cpuSeconds() float64 {
	var total float64
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		_ = syscall.Getrusage(who, &ru)
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return total
}
