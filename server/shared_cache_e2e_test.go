package main_test

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
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
