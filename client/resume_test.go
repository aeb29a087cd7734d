package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// TestRenderResumesABrokenStream: the connection breaks part-way through
// the video; Render reconnects through the same target, resumes from the
// bytes it has, and ends with the whole file, byte-identical to a render
// that was never interrupted.
func TestRenderResumesABrokenStream(t *testing.T) {
	srv := startServer(t, service.Config{Cache: cache.Open(t.TempDir(), 1<<30, nil, nil)})
	var solo bytes.Buffer
	if _, err := dial(t, srv.Addr).Render(t.Context(), smallVideo(21, 90), &solo); err != nil {
		t.Fatal(err)
	}
	// Well past the init segment, well before the end.
	proxy := testserver.StartCutProxy(t, srv.Addr, int64(solo.Len()/2))
	var (
		got     bytes.Buffer
		retries []client.Progress
	)
	res, err := dial(t, proxy.Addr()).Render(t.Context(), smallVideo(21, 90), &got, client.WithProgress(func(p client.Progress) {
		if p.Phase == client.PhaseResuming {
			retries = append(retries, p)
		}
	}))
	if err != nil {
		t.Fatalf("render through a connection cut at %d bytes: %v", solo.Len()/2, err)
	}
	if !bytes.Equal(got.Bytes(), solo.Bytes()) || res.SHA256 != res.Trailer.GetSha256() {
		t.Fatal("resumed video differs from the uninterrupted one")
	}
	if len(res.Resumes) != 1 || res.Resumes[0] <= 0 || res.Resumes[0] >= int64(solo.Len()) || len(retries) != 1 || retries[0].Retry != 1 {
		t.Fatalf("resumes %v, resuming progress %+v; want one resume part-way", res.Resumes, retries)
	}
	if proxy.Conns() < 2 {
		t.Fatalf("%d connections through the proxy, want a reconnection", proxy.Conns())
	}
}

// TestRenderWithoutResume: with WithoutResume the broken stream is the
// error, UNAVAILABLE.
func TestRenderWithoutResume(t *testing.T) {
	srv := startServer(t, service.Config{})
	proxy := testserver.StartCutProxy(t, srv.Addr, 20<<10)
	var got bytes.Buffer
	_, err := dial(t, proxy.Addr()).Render(t.Context(), smallVideo(22, 90), &got, client.WithoutResume())
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("render without resume through a cut connection: %v, want Unavailable", err)
	}
}

// TestRenderRefusedUnavailableIsNotRetried: a server that refuses the
// render itself (its ffmpeg is unusable) answers UNAVAILABLE before the
// stream starts; that is not a break, and Render fails at once.
func TestRenderRefusedUnavailableIsNotRetried(t *testing.T) {
	srv := startServer(t, service.Config{EncoderErr: errors.New("no ffmpeg here")})
	resuming := false
	_, err := dial(t, srv.Addr).Render(t.Context(), smallVideo(23, 10), io.Discard, client.WithProgress(func(p client.Progress) {
		resuming = resuming || p.Phase == client.PhaseResuming
	}))
	if status.Code(err) != codes.Unavailable || resuming {
		t.Fatalf("render on a server without ffmpeg: %v (resuming %v), want Unavailable at once", err, resuming)
	}
}

// TestDialReplicaList: a comma-separated list dials every replica and
// balances over the ones that answer; a dead entry does not stop it. The
// replicas share one lease registry, as replicas on one etcd do.
func TestDialReplicaList(t *testing.T) {
	reg := lease.NewMemory(lease.Config{Capacity: 5})
	t.Cleanup(func() { _ = reg.Close() })
	a, b := startServer(t, service.Config{Leases: reg}), startServer(t, service.Config{Leases: reg})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close()
	c := dial(t, deadAddr+","+a.Addr+", "+b.Addr)
	var buf bytes.Buffer
	res, err := c.Render(context.Background(), smallVideo(24, 10), &buf)
	if err != nil || res.Bytes == 0 {
		t.Fatalf("render over a replica list: %v", err)
	}
}

// TestRenderResumeRendersOrJoins: a stream cut part-way through a render
// that is not cached resumes through a new connection with the same lease.
// Without an orphan grace the server stopped the render when the stream
// broke, so the resume renders again (RENDERED); with one, the resume joins
// the render still running (SHARED). Either way the file is byte-identical
// to an uninterrupted render.
func TestRenderResumeRendersOrJoins(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grace  time.Duration
		source whirlv1.VideoSource
	}{
		{"re-render", 0, whirlv1.VideoSource_VIDEO_SOURCE_RENDERED},
		{"join", time.Minute, whirlv1.VideoSource_VIDEO_SOURCE_SHARED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, service.Config{OrphanGrace: tc.grace})
			var solo bytes.Buffer
			if _, err := dial(t, srv.Addr).Render(t.Context(), smallVideo(25, 900), &solo); err != nil {
				t.Fatal(err)
			}
			proxy := testserver.StartCutProxy(t, srv.Addr, int64(solo.Len()/10))
			var got bytes.Buffer
			res, err := dial(t, proxy.Addr()).Render(t.Context(), smallVideo(25, 900), &got)
			if err != nil {
				t.Fatalf("render through a cut connection: %v", err)
			}
			if len(res.Resumes) != 1 || !bytes.Equal(got.Bytes(), solo.Bytes()) {
				t.Fatalf("resumes %v; video identical: %v", res.Resumes, bytes.Equal(got.Bytes(), solo.Bytes()))
			}
			if s := res.Trailer.GetSource(); s != tc.source {
				t.Errorf("resumed stream's source %v, want %v", s, tc.source)
			}
		})
	}
}
