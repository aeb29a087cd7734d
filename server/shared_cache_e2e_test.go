package main_test

import (
	"bytes"
	"context"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// TestSharedCacheReplicas: two server binaries, each with its own local
// cache, share a bucket on a real S3 server (credentials from the
// environment): a video rendered by the first is fetched by id and served
// CACHED by the second.
func TestSharedCacheReplicas(t *testing.T) {
	s3 := testserver.StartS3(t)
	one := startServer(t, "--shared-cache-url", s3.URL)
	two := startServer(t, "--shared-cache-url", s3.URL)
	want, id := renderOn(t, one, 81)

	c, err := client.Dial(t.Context(), two.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The upload runs in the background after the render.
	var got bytes.Buffer
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got.Reset()
		_, err = c.GetVideo(t.Context(), id, &got)
		if status.Code(err) != codes.NotFound || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("GetVideo on the second replica: %v, %d bytes", err, got.Len())
	}
	var again bytes.Buffer
	res, err := c.Render(t.Context(), &whirlv1.RenderAnimationRequest{
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 81}},
		Video:  &whirlv1.VideoOptions{Width: 160, Height: 160, Frames: 60},
	}, &again)
	if err != nil || res.Trailer.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_CACHED || !bytes.Equal(again.Bytes(), want) {
		t.Fatalf("RenderAnimation on the second replica: %v, source %v", err, res.Trailer.GetSource())
	}
}

// TestFailoverAfterRenderResumesFromSharedTier: the replica streaming a
// video is SIGKILLed after its render has finished and its upload has
// landed, while the client is still reading. The client resumes on the
// other replica, which has never seen the video: it answers from the
// shared tier, CACHED, with no ffmpeg started, and the bytes are those of
// the whole video.
func TestFailoverAfterRenderResumesFromSharedTier(t *testing.T) {
	endpoint := startEtcd(t).Endpoint
	s3 := testserver.StartS3(t)
	ffmpeg := []ffmpegLog{newFFmpegLog(t), newFFmpegLog(t)}
	var replicas []*replica
	for _, ff := range ffmpeg {
		replicas = append(replicas, startReplica(t, endpoint, "--shared-cache-url", s3.URL, "--metrics-addr", "127.0.0.1:0", "--ffmpeg", ff.script))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, replicas[0].addr+","+replicas[1].addr, client.WithHolder("failover"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const uploaded = `whirl_shared_cache_bytes_total\{direction="upload"\}`
	killed := -1
	var got bytes.Buffer
	res, err := c.Render(ctx, &whirlv1.RenderAnimationRequest{
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 1717}},
		Video:  &whirlv1.VideoOptions{Width: 320, Height: 320, Fps: 30, Frames: 300},
	}, &got, client.WithProgress(func(p client.Progress) {
		// At the first bytes, hold the stream until the serving replica
		// has rendered the whole video and uploaded it, then kill it.
		if killed >= 0 || p.Phase != client.PhaseRendering || p.Bytes == 0 {
			return
		}
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for i, r := range replicas {
				if metric(t, r.srv.MetricsAddr, uploaded) > 0 {
					killed = i
					if err := r.srv.Signal(syscall.SIGKILL); err != nil {
						t.Error(err)
					}
					return
				}
			}
		}
		t.Error("no replica uploaded the video within a minute")
		killed = len(replicas)
	}))
	if err != nil {
		t.Fatalf("render across the failover: %v", err)
	}
	if killed < 0 || killed >= len(replicas) {
		t.Fatal("no replica was killed")
	}
	survivor := replicas[1-killed]
	if len(res.Resumes) == 0 || res.Trailer.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_CACHED {
		t.Fatalf("resumes %v, last source %v: the stream did not resume from a cache", res.Resumes, res.Trailer.GetSource())
	}
	if n := ffmpeg[1-killed].encodes(t, "320x320"); n != 0 {
		t.Errorf("the surviving replica started %d encoders for the video", n)
	}
	if n := ffmpeg[killed].encodes(t, "320x320"); n == 0 {
		t.Error("the killed replica logged no encoder: the test proves nothing")
	}
	if hits := metric(t, survivor.srv.MetricsAddr, "whirl_shared_cache_hits_total"); hits < 1 {
		t.Errorf("the surviving replica counted %v shared-tier hits", hits)
	}
	var whole bytes.Buffer
	if _, err := c.GetVideo(ctx, res.Trailer.GetVideoId(), &whole); err != nil || !bytes.Equal(whole.Bytes(), got.Bytes()) {
		t.Fatalf("GetVideo of %s on the surviving replica: %v; %d bytes against %d streamed", res.Trailer.GetVideoId(), err, whole.Len(), got.Len())
	}
	mp4check.Probe(t, got.Bytes(), mp4check.Expect{Width: 320, Height: 320, FPS: 30, Frames: 300})
	t.Logf("replica %d killed after its upload; resumed at %v of %d bytes from the shared tier", killed, res.Resumes, res.Bytes)
}
