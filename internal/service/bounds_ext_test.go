package service_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/service"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// blockingEncoder never finishes a frame: a render holding it holds its
// slot until its call ends.
type blockingEncoder struct{ ctx context.Context }

func (b blockingEncoder) WriteFrame([]byte) error { <-b.ctx.Done(); return b.ctx.Err() }
func (b blockingEncoder) Close() error            { return nil }

// boundsEnv is a server whose only render slot is taken by a render that
// never advances, so every RenderAnimation that passes validation queues
// behind it: its first event (a queue position) proves acceptance without
// rendering a frame.
type boundsEnv struct {
	harness
}

func startBounds(t *testing.T) boundsEnv {
	t.Helper()
	h := startHarness(t, service.Config{
		RenderSlots: 1,
		StartEncoder: func(ctx context.Context, _ encode.Options, _ func(fmp4.Segment) error) (service.FrameEncoder, error) {
			return blockingEncoder{ctx}, nil
		},
	}, 100, nil)
	blocker := h.acquireN(t, 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// A video no case below asks for: an identical request would join the
	// blocker's render instead of queueing.
	if _, err := h.api.RenderAnimation(ctx, tinyVideo(blocker.token, 424242, 10)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "blocker render", func() string {
		if run, _ := h.srv.RenderStats(); run != 1 {
			return fmt.Sprintf("%d running", run)
		}
		return ""
	})
	return boundsEnv{h}
}

// animation sends req (with a fresh lease) and returns nil if it was
// accepted (queued), else the stream's error.
func (e boundsEnv) animation(t *testing.T, req *whirlv1.RenderAnimationRequest) error {
	t.Helper()
	req = proto.Clone(req).(*whirlv1.RenderAnimationRequest)
	if req.LeaseId == "" {
		req.LeaseId = e.acquireN(t, 1)[0].token
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := e.api.RenderAnimation(ctx, req)
	if err != nil {
		return err
	}
	ev, err := stream.Recv()
	if err != nil {
		return err
	}
	// Earlier accepted requests may still be leaving the line.
	if p := ev.GetProgress(); p == nil || p.GetQueuePosition() < 1 {
		t.Fatalf("first event of an accepted render: %v, want a queue position", ev)
	}
	return nil
}

func circle(r float64, f int32) *whirlv1.Wheel {
	return &whirlv1.Wheel{Radius: r, Frequency: f, Shape: whirlv1.Shape_SHAPE_CIRCLE}
}

// okCurve is a valid explicit curve: k_fold 3, congruency 1.
func okCurve() *whirlv1.Curve {
	return &whirlv1.Curve{KFold: 3, Congruency: 1, Wheels: []*whirlv1.Wheel{circle(1, 1), circle(0.5, -2)}}
}

func wheelsOf(n int) []*whirlv1.Wheel {
	ws := make([]*whirlv1.Wheel, n)
	for i := range ws {
		ws[i] = circle(1/float64(i+1), int32(1+3*i))
	}
	return ws
}

func ptr[T any](v T) *T { return &v }

// TestEveryFieldAtItsBounds proves every numeric bound of the request
// contract exactly: each field at its bound is accepted and just past it
// is INVALID_ARGUMENT naming that field, for RenderAnimationRequest.video
// (and its curve sources, fields prefixed "curve." / "generate."),
// RenderStillRequest and GenerateCurveRequest, plus the pixel×frame
// budget. Accepted animations queue behind a render that never advances,
// so no frame is drawn; accepted stills are drawn (small) and decoded.
func TestEveryFieldAtItsBounds(t *testing.T) {
	env := startBounds(t)
	gen := func(g *whirlv1.GenerateCurveRequest) *whirlv1.RenderAnimationRequest_Generate {
		return &whirlv1.RenderAnimationRequest_Generate{Generate: g}
	}
	video := func(w, h, fps, frames int32) *whirlv1.RenderAnimationRequest {
		return &whirlv1.RenderAnimationRequest{Source: gen(&whirlv1.GenerateCurveRequest{Seed: 1}),
			Video: &whirlv1.VideoOptions{Width: w, Height: h, Fps: fps, Frames: frames}}
	}
	withVideo := func(f func(*whirlv1.VideoOptions)) *whirlv1.RenderAnimationRequest {
		r := video(64, 64, 30, 10)
		f(r.Video)
		return r
	}
	lineWidth := func(w float64) *whirlv1.RenderAnimationRequest {
		return withVideo(func(v *whirlv1.VideoOptions) { v.Appearance = &whirlv1.Appearance{LineWidth: w} })
	}
	withGen := func(g *whirlv1.GenerateCurveRequest) *whirlv1.RenderAnimationRequest {
		r := video(64, 64, 30, 10)
		r.Source = gen(g)
		return r
	}
	withCurve := func(c *whirlv1.Curve) *whirlv1.RenderAnimationRequest {
		r := video(64, 64, 30, 10)
		r.Source = &whirlv1.RenderAnimationRequest_Curve{Curve: c}
		return r
	}
	budget := int32(service.DefaultMaxPixelFrames / (1920 * 1080))

	t.Run("RenderAnimation", func(t *testing.T) {
		tests := []struct {
			name  string
			req   *whirlv1.RenderAnimationRequest
			field string // "" = accepted
		}{
			{"width 64", video(64, 64, 30, 10), ""},
			{"width 1920", video(1920, 64, 30, 10), ""},
			{"width 0 is the default", video(0, 64, 30, 10), ""},
			{"width 62", video(62, 64, 30, 10), "video.width"},
			{"width 1922", video(1922, 64, 30, 10), "video.width"},
			{"width 65 odd", video(65, 64, 30, 10), "video.width"},
			{"width -64", video(-64, 64, 30, 10), "video.width"},
			{"width max int32", video(math.MaxInt32, 64, 30, 10), "video.width"},
			{"height 64", video(64, 64, 30, 10), ""},
			{"height 1920", video(64, 1920, 30, 10), ""},
			{"height 62", video(64, 62, 30, 10), "video.height"},
			{"height 1922", video(64, 1922, 30, 10), "video.height"},
			{"height 1919 odd", video(64, 1919, 30, 10), "video.height"},
			{"height min int32", video(64, math.MinInt32, 30, 10), "video.height"},
			{"fps 1", video(64, 64, 1, 10), ""},
			{"fps 60", video(64, 64, 60, 10), ""},
			{"fps 0 is the default", video(64, 64, 0, 10), ""},
			{"fps 61", video(64, 64, 61, 10), "video.fps"},
			{"fps -1", video(64, 64, -1, 10), "video.fps"},
			{"frames 1", video(64, 64, 30, 1), ""},
			{"frames 3600", video(64, 64, 30, 3600), ""},
			{"frames 0 is the default", video(64, 64, 30, 0), ""},
			{"frames 3601", video(64, 64, 30, 3601), "video.frames"},
			{"frames -1", video(64, 64, 30, -1), "video.frames"},
			{"style trace", withVideo(func(v *whirlv1.VideoOptions) { v.Style = whirlv1.Style_STYLE_TRACE }), ""},
			{"style 3", withVideo(func(v *whirlv1.VideoOptions) { v.Style = 3 }), "video.style"},
			{"style -1", withVideo(func(v *whirlv1.VideoOptions) { v.Style = -1 }), "video.style"},
			{"line width 0.5", lineWidth(0.5), ""},
			{"line width 16", lineWidth(16), ""},
			{"line width 0 is automatic", lineWidth(0), ""},
			{"line width below 0.5", lineWidth(math.Nextafter(0.5, 0)), "video.appearance.line_width"},
			{"line width above 16", lineWidth(math.Nextafter(16, 17)), "video.appearance.line_width"},
			{"line width negative", lineWidth(-1), "video.appearance.line_width"},
			{"line width NaN", lineWidth(math.NaN()), "video.appearance.line_width"},
			{"line width +Inf", lineWidth(math.Inf(1)), "video.appearance.line_width"},
			{"background #rrggbb", withVideo(func(v *whirlv1.VideoOptions) { v.Appearance = &whirlv1.Appearance{Background: "#A0b1C2"} }), ""},
			{"background short", withVideo(func(v *whirlv1.VideoOptions) { v.Appearance = &whirlv1.Appearance{Background: "#fffff"} }), "video.appearance.background"},
			{"pen not hex", withVideo(func(v *whirlv1.VideoOptions) { v.Appearance = &whirlv1.Appearance{Pen: "#gggggg"} }), "video.appearance.pen"},
			// The budget is width×height×frames; the default is a minute
			// of 1080p at 30 fps.
			{"pixel budget exactly", video(1920, 1080, 30, budget), ""},
			{"pixel budget plus one frame", video(1920, 1080, 30, budget+1), "video"},
			{"pixel budget at max sides", video(1920, 1920, 30, 3600), "video"},
			{"generate.wheels 3", withGen(&whirlv1.GenerateCurveRequest{Wheels: 3}), ""},
			{"generate.wheels 13", withGen(&whirlv1.GenerateCurveRequest{Wheels: 13}), ""},
			{"generate.wheels 2", withGen(&whirlv1.GenerateCurveRequest{Wheels: 2}), "generate.wheels"},
			{"generate.wheels 14", withGen(&whirlv1.GenerateCurveRequest{Wheels: 14}), "generate.wheels"},
			{"generate.k_fold 2", withGen(&whirlv1.GenerateCurveRequest{KFold: 2}), ""},
			{"generate.k_fold 12", withGen(&whirlv1.GenerateCurveRequest{KFold: 12}), ""},
			{"generate.k_fold 1", withGen(&whirlv1.GenerateCurveRequest{KFold: 1}), "generate.k_fold"},
			{"generate.k_fold 13", withGen(&whirlv1.GenerateCurveRequest{KFold: 13}), "generate.k_fold"},
			{"generate.congruency k-1", withGen(&whirlv1.GenerateCurveRequest{KFold: 5, Congruency: ptr[int32](4)}), ""},
			{"generate.congruency k", withGen(&whirlv1.GenerateCurveRequest{KFold: 5, Congruency: ptr[int32](5)}), "generate.congruency"},
			{"generate.congruency -1", withGen(&whirlv1.GenerateCurveRequest{Congruency: ptr[int32](-1)}), "generate.congruency"},
			{"generate.shapes 14", withGen(&whirlv1.GenerateCurveRequest{Shapes: make([]whirlv1.Shape, 14)}), "generate.shapes"},
			{"curve at bounds", withCurve(&whirlv1.Curve{KFold: 12, Congruency: 11, Wheels: []*whirlv1.Wheel{circle(1000, -1), circle(1, 995)}}), ""},
			{"curve.wheels[0].frequency 1001", withCurve(&whirlv1.Curve{KFold: 1, Wheels: []*whirlv1.Wheel{circle(1, 1001)}}), "curve.wheels[0].frequency"},
			{"curve.k_fold 13", withCurve(&whirlv1.Curve{KFold: 13, Wheels: []*whirlv1.Wheel{circle(1, 1)}}), "curve.k_fold"},
			{"lease_id 31 digits", &whirlv1.RenderAnimationRequest{LeaseId: strings.Repeat("a", 31), Source: gen(&whirlv1.GenerateCurveRequest{})}, "lease_id"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := env.animation(t, tt.req)
				if tt.field == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				assertFieldViolation(t, err, tt.field)
			})
		}
	})

	still := func(w, h, frames int32, frame *int32) *whirlv1.RenderStillRequest {
		return &whirlv1.RenderStillRequest{Source: &whirlv1.RenderStillRequest_Curve{Curve: okCurve()},
			Width: w, Height: h, Frames: frames, Frame: frame}
	}
	stillCurve := func(c *whirlv1.Curve) *whirlv1.RenderStillRequest {
		r := still(16, 16, 0, nil)
		r.Source = &whirlv1.RenderStillRequest_Curve{Curve: c}
		return r
	}
	stillGen := func(g *whirlv1.GenerateCurveRequest) *whirlv1.RenderStillRequest {
		r := still(16, 16, 0, nil)
		r.Source = &whirlv1.RenderStillRequest_Generate{Generate: g}
		return r
	}
	wheel := func(f func(w *whirlv1.Wheel)) *whirlv1.RenderStillRequest {
		c := &whirlv1.Curve{KFold: 1, Wheels: []*whirlv1.Wheel{circle(1, 1)}}
		f(c.Wheels[0])
		return stillCurve(c)
	}
	ellipse := func(aspect float64) *whirlv1.RenderStillRequest {
		return wheel(func(w *whirlv1.Wheel) { w.Shape, w.Aspect = whirlv1.Shape_SHAPE_ELLIPSE, aspect })
	}
	t.Run("RenderStill", func(t *testing.T) {
		tests := []struct {
			name  string
			req   *whirlv1.RenderStillRequest
			field string
		}{
			{"width 16", still(16, 16, 0, nil), ""},
			{"width 2048", still(2048, 16, 0, nil), ""},
			{"width 15", still(15, 16, 0, nil), "width"},
			{"width 2049", still(2049, 16, 0, nil), "width"},
			{"width -16", still(-16, 16, 0, nil), "width"},
			{"height 2048", still(16, 2048, 0, nil), ""},
			{"height 15", still(16, 15, 0, nil), "height"},
			{"height 2049", still(16, 2049, 0, nil), "height"},
			{"frames 1, frame 0", still(16, 16, 1, ptr[int32](0)), ""},
			{"frames 3600, frame 3599", still(16, 16, 3600, ptr[int32](3599)), ""},
			{"frames 3601", still(16, 16, 3601, nil), "frames"},
			{"frames -1", still(16, 16, -1, nil), "frames"},
			{"frame = frames", still(16, 16, 10, ptr[int32](10)), "frame"},
			{"frame -1", still(16, 16, 10, ptr[int32](-1)), "frame"},
			{"frame 299 of the default 300", still(16, 16, 0, ptr[int32](299)), ""},
			{"frame 300 of the default 300", still(16, 16, 0, ptr[int32](300)), "frame"},
			{"style 3", &whirlv1.RenderStillRequest{Source: &whirlv1.RenderStillRequest_Curve{Curve: okCurve()}, Width: 16, Height: 16, Style: 3}, "style"},
			{"line width above 16", &whirlv1.RenderStillRequest{Source: &whirlv1.RenderStillRequest_Curve{Curve: okCurve()}, Width: 16, Height: 16,
				Appearance: &whirlv1.Appearance{LineWidth: math.Nextafter(16, 17)}}, "appearance.line_width"},
			{"no source", &whirlv1.RenderStillRequest{Width: 16, Height: 16}, "source"},

			{"curve.wheels 1", stillCurve(&whirlv1.Curve{KFold: 1, Wheels: wheelsOf(1)}), ""},
			{"curve.wheels 13", stillCurve(&whirlv1.Curve{KFold: 3, Congruency: 1, Wheels: wheelsOf(13)}), ""},
			{"curve.wheels 0", stillCurve(&whirlv1.Curve{KFold: 1}), "curve.wheels"},
			{"curve.wheels 14", stillCurve(&whirlv1.Curve{KFold: 3, Congruency: 1, Wheels: wheelsOf(14)}), "curve.wheels"},
			{"curve.k_fold 1", stillCurve(&whirlv1.Curve{KFold: 1, Wheels: wheelsOf(2)}), ""},
			{"curve.k_fold 12", stillCurve(&whirlv1.Curve{KFold: 12, Congruency: 1, Wheels: []*whirlv1.Wheel{circle(1, 1), circle(1, -11)}}), ""},
			{"curve.k_fold 0", stillCurve(&whirlv1.Curve{KFold: 0, Wheels: wheelsOf(1)}), "curve.k_fold"},
			{"curve.k_fold 13", stillCurve(&whirlv1.Curve{KFold: 13, Congruency: 1, Wheels: wheelsOf(1)}), "curve.k_fold"},
			{"curve.congruency k-1", stillCurve(&whirlv1.Curve{KFold: 4, Congruency: 3, Wheels: []*whirlv1.Wheel{circle(1, 3), circle(1, -1)}}), ""},
			{"curve.congruency k", stillCurve(&whirlv1.Curve{KFold: 4, Congruency: 4, Wheels: []*whirlv1.Wheel{circle(1, 4)}}), "curve.congruency"},
			{"curve.congruency -1", stillCurve(&whirlv1.Curve{KFold: 4, Congruency: -1, Wheels: []*whirlv1.Wheel{circle(1, 3)}}), "curve.congruency"},
			{"radius 1000", wheel(func(w *whirlv1.Wheel) { w.Radius = 1000 }), ""},
			{"radius 1e-300", wheel(func(w *whirlv1.Wheel) { w.Radius = 1e-300 }), ""},
			{"radius smallest positive", wheel(func(w *whirlv1.Wheel) { w.Radius = math.SmallestNonzeroFloat64 }), ""},
			{"radius above 1000", wheel(func(w *whirlv1.Wheel) { w.Radius = math.Nextafter(1000, 1001) }), "curve.wheels[0].radius"},
			{"radius 0", wheel(func(w *whirlv1.Wheel) { w.Radius = 0 }), "curve.wheels[0].radius"},
			{"radius -1", wheel(func(w *whirlv1.Wheel) { w.Radius = -1 }), "curve.wheels[0].radius"},
			{"radius +Inf", wheel(func(w *whirlv1.Wheel) { w.Radius = math.Inf(1) }), "curve.wheels[0].radius"},
			{"radius NaN", wheel(func(w *whirlv1.Wheel) { w.Radius = math.NaN() }), "curve.wheels[0].radius"},
			{"frequency 1000", wheel(func(w *whirlv1.Wheel) { w.Frequency = 1000 }), ""},
			{"frequency -1000", wheel(func(w *whirlv1.Wheel) { w.Frequency = -1000 }), ""},
			{"frequency 1001", wheel(func(w *whirlv1.Wheel) { w.Frequency = 1001 }), "curve.wheels[0].frequency"},
			{"frequency -1001", wheel(func(w *whirlv1.Wheel) { w.Frequency = -1001 }), "curve.wheels[0].frequency"},
			{"frequency 0", wheel(func(w *whirlv1.Wheel) { w.Frequency = 0 }), "curve.wheels[0].frequency"},
			{"frequency min int32", wheel(func(w *whirlv1.Wheel) { w.Frequency = math.MinInt32 }), "curve.wheels[0].frequency"},
			{"frequency not congruent", stillCurve(&whirlv1.Curve{KFold: 3, Congruency: 1, Wheels: []*whirlv1.Wheel{circle(1, 2)}}), "curve.wheels[0].frequency"},
			{"phase 1e308", wheel(func(w *whirlv1.Wheel) { w.Phase = 1e308 }), ""},
			{"phase -MaxFloat64", wheel(func(w *whirlv1.Wheel) { w.Phase = -math.MaxFloat64 }), ""},
			{"phase +Inf", wheel(func(w *whirlv1.Wheel) { w.Phase = math.Inf(1) }), "curve.wheels[0].phase"},
			{"phase NaN", wheel(func(w *whirlv1.Wheel) { w.Phase = math.NaN() }), "curve.wheels[0].phase"},
			{"shape tetracuspid", wheel(func(w *whirlv1.Wheel) { w.Shape = whirlv1.Shape_SHAPE_TETRACUSPID }), ""},
			{"shape unspecified", wheel(func(w *whirlv1.Wheel) { w.Shape = whirlv1.Shape_SHAPE_UNSPECIFIED }), "curve.wheels[0].shape"},
			{"shape 6", wheel(func(w *whirlv1.Wheel) { w.Shape = 6 }), "curve.wheels[0].shape"},
			{"aspect 1", ellipse(1), ""},
			{"aspect 4", ellipse(4), ""},
			{"aspect 0 is the default", ellipse(0), ""},
			{"aspect below 1", ellipse(math.Nextafter(1, 0)), "curve.wheels[0].aspect"},
			{"aspect above 4", ellipse(math.Nextafter(4, 5)), "curve.wheels[0].aspect"},
			{"aspect NaN", ellipse(math.NaN()), "curve.wheels[0].aspect"},
			{"aspect of a circle is ignored", wheel(func(w *whirlv1.Wheel) { w.Aspect = 100 }), ""},
			{"generate.wheels 14", stillGen(&whirlv1.GenerateCurveRequest{Wheels: 14}), "generate.wheels"},
			{"generate.k_fold 13", stillGen(&whirlv1.GenerateCurveRequest{KFold: 13}), "generate.k_fold"},
			{"generate.congruency 12 with k_fold random", stillGen(&whirlv1.GenerateCurveRequest{Congruency: ptr[int32](12)}), "generate.congruency"},
			{"generate.shapes[1] 6", stillGen(&whirlv1.GenerateCurveRequest{Shapes: []whirlv1.Shape{1, 6, 1}}), "generate.shapes[1]"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, err := env.api.RenderStill(context.Background(), tt.req)
				if tt.field != "" {
					assertFieldViolation(t, err, tt.field)
					return
				}
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				img, err := png.Decode(bytes.NewReader(resp.GetPng()))
				if err != nil {
					t.Fatal(err)
				}
				if b := img.Bounds(); int32(b.Dx()) != tt.req.GetWidth() || int32(b.Dy()) != tt.req.GetHeight() {
					t.Errorf("PNG is %v, asked for %dx%d", b, tt.req.GetWidth(), tt.req.GetHeight())
				}
			})
		}
	})

	t.Run("GenerateCurve", func(t *testing.T) {
		shapes := func(n int, s whirlv1.Shape) []whirlv1.Shape {
			out := make([]whirlv1.Shape, n)
			for i := range out {
				out[i] = s
			}
			return out
		}
		tests := []struct {
			name  string
			req   *whirlv1.GenerateCurveRequest
			field string
		}{
			{"wheels 3", &whirlv1.GenerateCurveRequest{Wheels: 3}, ""},
			{"wheels 13", &whirlv1.GenerateCurveRequest{Wheels: 13}, ""},
			{"wheels 2", &whirlv1.GenerateCurveRequest{Wheels: 2}, "wheels"},
			{"wheels 14", &whirlv1.GenerateCurveRequest{Wheels: 14}, "wheels"},
			{"wheels -1", &whirlv1.GenerateCurveRequest{Wheels: -1}, "wheels"},
			{"k_fold 2", &whirlv1.GenerateCurveRequest{KFold: 2}, ""},
			{"k_fold 12", &whirlv1.GenerateCurveRequest{KFold: 12}, ""},
			{"k_fold 1", &whirlv1.GenerateCurveRequest{KFold: 1}, "k_fold"},
			{"k_fold 13", &whirlv1.GenerateCurveRequest{KFold: 13}, "k_fold"},
			{"k_fold -2", &whirlv1.GenerateCurveRequest{KFold: -2}, "k_fold"},
			{"congruency 0", &whirlv1.GenerateCurveRequest{KFold: 2, Congruency: ptr[int32](0)}, ""},
			{"congruency k-1", &whirlv1.GenerateCurveRequest{KFold: 12, Congruency: ptr[int32](11)}, ""},
			{"congruency k", &whirlv1.GenerateCurveRequest{KFold: 12, Congruency: ptr[int32](12)}, "congruency"},
			{"congruency -1", &whirlv1.GenerateCurveRequest{KFold: 12, Congruency: ptr[int32](-1)}, "congruency"},
			{"congruency 11, k_fold random", &whirlv1.GenerateCurveRequest{Congruency: ptr[int32](11)}, ""},
			{"congruency 12, k_fold random", &whirlv1.GenerateCurveRequest{Congruency: ptr[int32](12)}, "congruency"},
			{"shapes 13", &whirlv1.GenerateCurveRequest{Shapes: shapes(13, whirlv1.Shape_SHAPE_SQUARE)}, ""},
			{"shapes 14", &whirlv1.GenerateCurveRequest{Shapes: shapes(14, whirlv1.Shape_SHAPE_SQUARE)}, "shapes"},
			{"shapes 1 for every wheel", &whirlv1.GenerateCurveRequest{Wheels: 7, Shapes: shapes(1, whirlv1.Shape_SHAPE_TRIANGLE)}, ""},
			{"shapes 2, wheels unset", &whirlv1.GenerateCurveRequest{Shapes: shapes(2, whirlv1.Shape_SHAPE_SQUARE)}, "shapes"},
			{"shapes 3 for 5 wheels", &whirlv1.GenerateCurveRequest{Wheels: 5, Shapes: shapes(3, whirlv1.Shape_SHAPE_SQUARE)}, "shapes"},
			{"shapes[0] 5", &whirlv1.GenerateCurveRequest{Shapes: shapes(1, whirlv1.Shape_SHAPE_TETRACUSPID)}, ""},
			{"shapes[0] 6", &whirlv1.GenerateCurveRequest{Shapes: shapes(1, 6)}, "shapes[0]"},
			{"shapes[0] -1", &whirlv1.GenerateCurveRequest{Shapes: shapes(1, -1)}, "shapes[0]"},
			{"seed max uint64", &whirlv1.GenerateCurveRequest{Seed: math.MaxUint64, Wheels: 13, KFold: 12, Congruency: ptr[int32](0)}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c, err := env.api.GenerateCurve(context.Background(), tt.req)
				if tt.field != "" {
					assertFieldViolation(t, err, tt.field)
					return
				}
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				s := c.GetSummary()
				if n := tt.req.GetWheels(); n != 0 && (s.GetWheels() != n || int32(len(c.GetWheels())) != n) {
					t.Errorf("asked for %d wheels, got %v", n, s)
				}
				if k := tt.req.GetKFold(); k != 0 && c.GetKFold() != k {
					t.Errorf("asked for k_fold %d, got %d", k, c.GetKFold())
				}
				if tt.req.Congruency != nil && c.GetCongruency() != tt.req.GetCongruency() {
					t.Errorf("asked for congruency %d, got %d", tt.req.GetCongruency(), c.GetCongruency())
				}
			})
		}
	})
}

// TestOversizedAndFloodingRequests proves the 1 MiB cap on request
// messages: anything bigger is RESOURCE_EXHAUSTED from gRPC before any
// handler runs, whatever the RPC and however the bytes are spent (many
// wheels, a long holder, an unknown field); just under the cap the request
// reaches validation. A request whose every part is invalid is answered
// INVALID_ARGUMENT with an error of bounded size (at most 16 KiB), not
// one violation per fault however many there are.
func TestOversizedAndFloodingRequests(t *testing.T) {
	h := startHarness(t, service.Config{}, 1, nil)
	const limit = 1 << 20
	// wheels returns a curve message of about size bytes.
	curveOfSize := func(size int, w *whirlv1.Wheel) *whirlv1.Curve {
		c := &whirlv1.Curve{KFold: 1}
		per := proto.Size(&whirlv1.Curve{Wheels: []*whirlv1.Wheel{w}})
		for range size / per {
			c.Wheels = append(c.Wheels, w)
		}
		return c
	}
	stillOf := func(c *whirlv1.Curve) *whirlv1.RenderStillRequest {
		return &whirlv1.RenderStillRequest{Source: &whirlv1.RenderStillRequest_Curve{Curve: c}, Width: 16, Height: 16}
	}
	withUnknown := func(m proto.Message, n int) {
		raw := protowire.AppendTag(nil, 1000, protowire.BytesType)
		raw = protowire.AppendBytes(raw, make([]byte, n))
		m.ProtoReflect().SetUnknown(raw)
	}
	bigAnimation := &whirlv1.RenderAnimationRequest{LeaseId: strings.Repeat("a", 32), Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{}}}
	withUnknown(bigAnimation, limit)
	bigGenerate := &whirlv1.GenerateCurveRequest{Shapes: make([]whirlv1.Shape, limit+1)}

	tests := []struct {
		name string
		call func(ctx context.Context) error
		want codes.Code
		// field, for INVALID_ARGUMENT, is a field that must be named.
		field string
	}{
		{"RenderStill with 1 MiB of wheels", func(ctx context.Context) error {
			_, err := h.api.RenderStill(ctx, stillOf(curveOfSize(limit+100, circle(1, 1))))
			return err
		}, codes.ResourceExhausted, ""},
		{"RenderStill just under 1 MiB of wheels", func(ctx context.Context) error {
			_, err := h.api.RenderStill(ctx, stillOf(curveOfSize(limit-1000, circle(1, 1))))
			return err
		}, codes.InvalidArgument, "curve.wheels"},
		// 100 KiB of wheels, each wrong four ways: the answer must not be
		// a list of every fault of every wheel (that is 10 bytes of error
		// per byte of request, ~10 MB in one HTTP/2 trailer at 1 MiB, and
		// seconds of server CPU for one unauthenticated call).
		{"RenderStill with 100 KiB of invalid wheels", func(ctx context.Context) error {
			_, err := h.api.RenderStill(ctx, stillOf(curveOfSize(100<<10, &whirlv1.Wheel{Radius: math.NaN(), Phase: math.Inf(1), Shape: 9, Frequency: 1001})))
			return err
		}, codes.InvalidArgument, "curve.wheels"},
		{"RenderAnimation with a 1 MiB unknown field", func(ctx context.Context) error {
			stream, err := h.api.RenderAnimation(ctx, bigAnimation)
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}, codes.ResourceExhausted, ""},
		{"GenerateCurve with 1 MiB of shapes", func(ctx context.Context) error {
			_, err := h.api.GenerateCurve(ctx, bigGenerate)
			return err
		}, codes.ResourceExhausted, ""},
		{"AcquireLease with a 1 MiB holder", func(ctx context.Context) error {
			_, err := h.api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: strings.Repeat("h", limit)})
			return err
		}, codes.ResourceExhausted, ""},
		{"ListLeases with a 1 MiB unknown field", func(ctx context.Context) error {
			req := &whirlv1.ListLeasesRequest{}
			withUnknown(req, limit)
			_, err := h.admin.ListLeases(adminCtx(), req)
			return err
		}, codes.ResourceExhausted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := tt.call(ctx)
			if tt.want == codes.InvalidArgument {
				assertFieldViolation(t, err, tt.field)
				var n int
				for _, d := range status.Convert(err).Details() {
					if br, ok := d.(*errdetails.BadRequest); ok {
						n += len(br.GetFieldViolations())
					}
				}
				if size := proto.Size(status.Convert(err).Proto()); size > 16<<10 {
					t.Errorf("error of %d bytes (%d field violations) for a request of at most 1 MiB: errors must be bounded", size, n)
				}
				return
			}
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code %v (%v), want %v", got, err, tt.want)
			}
		})
	}
	// The server is unharmed.
	if _, err := h.api.GenerateCurve(context.Background(), &whirlv1.GenerateCurveRequest{Seed: 3}); err != nil {
		t.Errorf("after the oversized requests: %v", err)
	}
}

// TestHugePhaseCostsLikeSmallPhase proves that a valid but hostile phase
// (finite, as the contract allows, but 1e308) does not make a tiny still
// expensive: RenderStill needs no lease, so its cost per request must not
// depend on how large the numbers in the curve are. Trigonometry on
// arguments near 1e308 costs about 100 times more per sample, so the
// renderer reduces such phases modulo 2π before drawing. The test asserts
// that event rather than timing two calls on a busy machine: the still with
// phase 1e308 is byte for byte the still with the reduced phase, so it is
// drawn by the same work. (Drawn unreduced, 1e308 + ωt rounds to 1e308 and
// the curve collapses to a point: the stills would differ.)
func TestHugePhaseCostsLikeSmallPhase(t *testing.T) {
	h := startHarness(t, service.Config{}, 1, nil)
	still := func(phase float64) []byte {
		t.Helper()
		c := &whirlv1.Curve{KFold: 1, Wheels: []*whirlv1.Wheel{{Radius: 1, Frequency: 1, Phase: phase, Shape: whirlv1.Shape_SHAPE_SQUARE}}}
		resp, err := h.api.RenderStill(context.Background(), &whirlv1.RenderStillRequest{Source: &whirlv1.RenderStillRequest_Curve{Curve: c}, Width: 16, Height: 16})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetPng()
	}
	const hostile = 1e308
	if !bytes.Equal(still(hostile), still(math.Mod(hostile, 2*math.Pi))) {
		t.Errorf("phase %g is not drawn as its reduction modulo 2π: the renderer works with the huge value", hostile)
	}
}
