package service_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/service"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// gatedEncoder holds the frame loop at its tenth frame until the gate it
// was started with closes, so a render is certainly in flight while a test
// joins it.
type gatedEncoder struct {
	service.FrameEncoder
	gate   <-chan struct{}
	frames int
}

func (g *gatedEncoder) WriteFrame(yuv []byte) error {
	if g.frames++; g.frames == 10 {
		<-g.gate
	}
	return g.FrameEncoder.WriteFrame(yuv)
}

// joins counts the requests that joined a render in flight.
type joins struct{ n atomic.Int32 }

func (*joins) CacheHit()         {}
func (*joins) CacheMiss()        {}
func (*joins) CacheEvicted()     {}
func (*joins) CacheBytes(int64)  {}
func (*joins) CacheWriteFailed() {}
func (j *joins) RenderShared()   { j.n.Add(1) }

// resumeFrom streams req resumed at offset and returns the chunks' bytes,
// checking they start exactly at offset, and the trailer.
func resumeFrom(t *testing.T, h harness, req *whirlv1.RenderAnimationRequest, id string, offset int64) ([]byte, *whirlv1.RenderTrailer, error) {
	t.Helper()
	req = proto.Clone(req).(*whirlv1.RenderAnimationRequest)
	req.Resume = &whirlv1.Resume{VideoId: id, Offset: offset}
	stream, err := h.api.RenderAnimation(context.Background(), req)
	if err != nil {
		return nil, nil, err
	}
	var (
		got     []byte
		trailer *whirlv1.RenderTrailer
		header  bool
	)
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return got, trailer, nil
		}
		if err != nil {
			return got, trailer, err
		}
		switch {
		case ev.GetHeader() != nil:
			header = true
			if ev.GetHeader().GetVideoId() != id {
				t.Fatalf("header video_id %s, want %s", ev.GetHeader().GetVideoId(), id)
			}
		case ev.GetChunk() != nil:
			if !header {
				t.Fatal("chunk before the header")
			}
			if c := ev.GetChunk(); c.GetOffset() != offset+int64(len(got)) {
				t.Fatalf("chunk at %d, want %d", c.GetOffset(), offset+int64(len(got)))
			}
			got = append(got, ev.GetChunk().GetData()...)
		case ev.GetTrailer() != nil:
			trailer = ev.GetTrailer()
		}
	}
}

// TestResumeEverywhere: for offsets at every kind of place in a video (the
// start, inside the init segment, on and just past fragment boundaries, a
// random byte, the last byte, the length), the bytes before the offset
// plus a resumed stream are the solo render, whether the resumed stream
// comes from a new render, a render in flight, or the cache.
func TestResumeEverywhere(t *testing.T) {
	var gate atomic.Pointer[chan struct{}]
	open := make(chan struct{})
	close(open)
	gate.Store(&open)
	gated := func(enc service.FrameEncoder, _ encode.Options) service.FrameEncoder {
		return &gatedEncoder{FrameEncoder: enc, gate: *gate.Load()}
	}
	cold := startHarness(t, service.Config{}, 3, nil)
	var joined joins
	shared := startHarness(t, service.Config{Cache: cache.Open("", 0, nil, &joined)}, 3, gated)
	cached := startHarness(t, service.Config{Cache: cache.Open(t.TempDir(), 1<<30, nil, nil)}, 3, nil)

	req := smallVideo(11, 40)
	req.LeaseId = cold.acquireN(t, 1)[0].token
	var ends []int64
	solo := collect(t, mustStream(t, cold, context.Background(), req), func(c *whirlv1.MediaChunk) {
		if c.GetSegmentEnd() {
			ends = append(ends, c.GetOffset()+int64(len(c.GetData())))
		}
	})
	if solo.err != nil || len(ends) < 3 {
		t.Fatalf("solo render: %v, %d segments", solo.err, len(ends))
	}
	id, n := solo.header.GetVideoId(), int64(len(solo.video))
	offsets := []int64{0, ends[0] / 2, ends[0], ends[0] + 1, ends[1], ends[1] + 1, 1 + rand.Int64N(n-1), n - 1, n}

	for _, tc := range []struct {
		name   string
		h      harness
		source whirlv1.VideoSource
	}{
		{"cold", cold, whirlv1.VideoSource_VIDEO_SOURCE_RENDERED},
		{"shared", shared, whirlv1.VideoSource_VIDEO_SOURCE_SHARED},
		{"cached", cached, whirlv1.VideoSource_VIDEO_SOURCE_CACHED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leases := tc.h.acquireN(t, 2)
			req := proto.Clone(req).(*whirlv1.RenderAnimationRequest)
			req.LeaseId = leases[0].token
			if tc.name == "cached" {
				if r := collect(t, mustStream(t, tc.h, context.Background(), req), nil); r.err != nil || !bytes.Equal(r.video, solo.video) {
					t.Fatalf("warming the cache: %v", r.err)
				}
			}
			for _, off := range offsets {
				var leader chan result
				if tc.name == "shared" {
					hold := make(chan struct{})
					gate.Store(&hold)
					leader = make(chan result, 1)
					lead := proto.Clone(req).(*whirlv1.RenderAnimationRequest)
					lead.LeaseId = leases[1].token
					stream := mustStream(t, tc.h, context.Background(), lead)
					// The header means the render runs, held at frame 10.
					go func() { leader <- collect(t, stream, nil) }()
					eventually(t, 10*time.Second, "the leader's render", func() string {
						if run, _ := tc.h.srv.RenderStats(); run != 1 {
							return "not running"
						}
						return ""
					})
					// Let the render go on once the resumed call has joined.
					before := joined.n.Load()
					go func() {
						for joined.n.Load() == before {
							time.Sleep(time.Millisecond)
						}
						close(hold)
					}()
				}
				got, trailer, err := resumeFrom(t, tc.h, req, id, off)
				if err != nil {
					t.Fatalf("offset %d: %v", off, err)
				}
				if !bytes.Equal(append(solo.video[:off:off], got...), solo.video) {
					t.Fatalf("offset %d: prefix + %d resumed bytes differ from the solo render", off, len(got))
				}
				if trailer.GetSha256() != solo.trailer.GetSha256() || trailer.GetTotalBytes() != n || trailer.GetSource() != tc.source {
					t.Fatalf("offset %d: trailer %v, want the whole file's, source %v", off, trailer, tc.source)
				}
				if leader != nil {
					if r := <-leader; r.err != nil || !bytes.Equal(r.video, solo.video) {
						t.Fatalf("the shared render's leader: %v", r.err)
					}
				}
			}
		})
	}
}
