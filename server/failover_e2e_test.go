package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// TestFailoverResumesOnTheOtherReplica: two server binaries share one etcd
// (each with its own cache directory) and the client's target names both.
// Mid-stream the replica serving a 720×720×300 render is killed with
// SIGKILL; the client reconnects to the other, resumes from the bytes it
// has, and ends with the same file as a render that was never
// interrupted. Live leases, sampled all along, never pass the capacity.
func TestFailoverResumesOnTheOtherReplica(t *testing.T) {
	const capacity = 2
	endpoint := startEtcd(t).Endpoint
	extra := []string{"--capacity", "2", "--metrics-addr", "127.0.0.1:0"}
	replicas := []*replica{startReplica(t, endpoint, extra...), startReplica(t, endpoint, extra...)}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// Sample the pool through whichever replica is alive.
	var alive [2]atomic.Bool
	alive[0].Store(true)
	alive[1].Store(true)
	var maxLive atomic.Int32
	sampling, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		authed := metadata.AppendToOutgoingContext(sampling, "authorization", "Bearer ops")
		for sampling.Err() == nil {
			for i, r := range replicas {
				if !alive[i].Load() {
					continue
				}
				if l, err := r.admin.ListLeases(authed, &whirlv1.ListLeasesRequest{}); err == nil && l.GetCount() > maxLive.Load() {
					maxLive.Store(l.GetCount())
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	c, err := client.Dial(ctx, replicas[0].addr+","+replicas[1].addr, client.WithHolder("failover"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := &whirlv1.RenderAnimationRequest{
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 1313}},
		Video:  &whirlv1.VideoOptions{Width: 720, Height: 720, Fps: 30, Frames: 300},
	}
	killed := make(chan int, 1)
	var once sync.Once
	var got bytes.Buffer
	res, err := c.Render(ctx, req, &got, client.WithProgress(func(p client.Progress) {
		// Well into the stream: find the replica rendering it and kill it.
		if p.Phase != client.PhaseRendering || p.Bytes < 64<<10 {
			return
		}
		once.Do(func() {
			for i, r := range replicas {
				if metric(t, r.srv.MetricsAddr, "whirl_renders_in_flight") == 1 {
					alive[i].Store(false)
					if err := r.srv.Signal(syscall.SIGKILL); err != nil {
						t.Error(err)
					}
					killed <- i
					return
				}
			}
			t.Error("no replica is rendering the stream")
		})
	}))
	stopSampling()
	wg.Wait()
	if err != nil {
		t.Fatalf("render across the failover: %v", err)
	}
	var dead int
	select {
	case dead = <-killed:
	default:
		t.Fatal("the stream ended before a replica was killed")
	}
	if len(res.Resumes) == 0 || res.Resumes[0] < 64<<10 {
		t.Fatalf("resumes %v: the client did not resume part-way", res.Resumes)
	}
	if n := maxLive.Load(); n > capacity {
		t.Fatalf("%d leases were live at once, capacity %d", n, capacity)
	}
	t.Logf("replica %d killed; resumed at %v of %d bytes; at most %d leases live", dead, res.Resumes, res.Bytes, maxLive.Load())

	// A render never interrupted, on a fresh replica with an empty cache.
	solo := startReplica(t, endpoint, extra...)
	lease := acquire(t, solo.api)
	want, err := renderStream(ctx, solo.api, &whirlv1.RenderAnimationRequest{LeaseId: lease, Source: req.Source, Video: req.Video}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(got.Bytes())
	if hex.EncodeToString(sum[:]) != want.sum() || res.SHA256 != want.sum() || want.trailer.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_RENDERED {
		t.Fatalf("after the failover the video's SHA-256 is %s; a solo render's (source %v) is %s", res.SHA256, want.trailer.GetSource(), want.sum())
	}
	mp4check.Probe(t, got.Bytes(), mp4check.Expect{Width: 720, Height: 720, FPS: 30, Frames: 300})
}
