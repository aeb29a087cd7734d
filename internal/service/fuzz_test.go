package service

import (
	"bytes"
	"context"
	"image/png"
	"log/slog"
	"math"
	"regexp"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/queue"
	"github.com/whirl-dev/whirl/internal/render"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// The fuzz targets feed arbitrary bytes, decoded as requests, to the real
// handlers (not a copy of their checks). Seed corpora live in
// testdata/fuzz/<Name>/; run one with
//
//	go test -run '^$' -fuzz '^FuzzRenderAnimationRequest$' -fuzztime 20s ./internal/service

// noLeases refuses every lease: an animation that passes validation stops
// at Pin with NOT_FOUND, before any rendering.
type noLeases struct{}

func (noLeases) Acquire(context.Context, lease.AcquireRequest) (lease.Lease, error) {
	return lease.Lease{}, lease.ErrNotFound
}
func (noLeases) Renew(context.Context, string) (lease.Lease, error) {
	return lease.Lease{}, lease.ErrNotFound
}
func (noLeases) Release(context.Context, string) error { return lease.ErrNotFound }
func (noLeases) Revoke(context.Context, string) error  { return lease.ErrNotFound }
func (noLeases) Pin(context.Context, string) (*lease.Pin, error) {
	return nil, lease.ErrNotFound
}
func (noLeases) List(context.Context) (lease.Snapshot, error) { return lease.Snapshot{}, nil }

// recordingStream is a RenderAnimation server stream that counts sends.
type recordingStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent int
}

func (s *recordingStream) Context() context.Context { return s.ctx }
func (s *recordingStream) Send(*whirlv1.RenderAnimationResponse) error {
	s.sent++
	return nil
}

func fuzzAnimation() *Animation {
	logger := slog.New(slog.DiscardHandler)
	return newAnimation(Config{Leases: noLeases{}, Logger: logger}, logger)
}

// fieldPath is every field path a violation may name.
var fieldPath = regexp.MustCompile(`^(lease_id|source|width|height|frames|frame|style|video|` +
	`(video\.)?(width|height|fps|frames|style)|(video\.)?appearance\.(background|pen|line_width)|` +
	`(curve\.)(wheels|k_fold|congruency)|curve\.wheels\[\d+\]\.(radius|frequency|phase|shape|aspect)|` +
	`(generate\.)?(wheels|k_fold|congruency|shapes|shapes\[\d+\])|resume\.(video_id|offset))$`)

// checkRefusal fails unless err is INVALID_ARGUMENT carrying a BadRequest
// with at least one violation, each naming a real field and saying why.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("refusal with code %v (%v), want InvalidArgument", st.Code(), err)
	}
	n := 0
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			n++
			if !fieldPath.MatchString(v.GetField()) || v.GetDescription() == "" {
				t.Fatalf("violation %q: %q names no field of the request or gives no reason", v.GetField(), v.GetDescription())
			}
		}
	}
	if n == 0 {
		t.Fatalf("INVALID_ARGUMENT without field violations: %v", st)
	}
}

// checkCurve fails unless c is a curve the contract allows and every number
// in it is finite.
func checkCurve(t *testing.T, c curve.Curve) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("accepted curve is invalid: %v", err)
	}
	for i, w := range c.Wheels {
		for _, x := range []float64{w.Radius, w.Phase, w.Aspect} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("wheel %d of an accepted curve has %v", i, x)
			}
		}
	}
	s := c.Summary()
	if s.Wheels != len(c.Wheels) || len(s.Shapes) != len(c.Wheels) || s.Symmetry < 1 || s.KFold != c.KFold || s.Congruency != c.Congruency {
		t.Fatalf("summary %+v of a curve of %d wheels, k_fold %d", s, len(c.Wheels), c.KFold)
	}
}

// FuzzRenderAnimationRequest: RenderAnimation never panics on any request;
// it refuses with INVALID_ARGUMENT and named field violations, or accepts
// (then stops at the lease, NOT_FOUND here) a request whose video lies in
// every bound of the contract, before sending anything.
func FuzzRenderAnimationRequest(f *testing.F) {
	a := fuzzAnimation()
	f.Fuzz(func(t *testing.T, b []byte) {
		req := &whirlv1.RenderAnimationRequest{}
		if proto.Unmarshal(b, req) != nil {
			return
		}
		stream := &recordingStream{ctx: context.Background()}
		err := a.RenderAnimation(req, stream)
		if stream.sent != 0 {
			t.Fatalf("%d events sent before the lease was pinned", stream.sent)
		}
		vr, verr := a.validateAnimation(req)
		if status.Code(err) != codes.NotFound {
			checkRefusal(t, err)
			if verr == nil {
				t.Fatalf("refused %v although it validates", err)
			}
			return
		}
		if verr != nil {
			t.Fatalf("accepted although validation says %v", verr)
		}
		o := vr.render
		switch {
		case o.Width < render.MinVideoSide || o.Width > render.MaxVideoSide || o.Width%2 != 0,
			o.Height < render.MinVideoSide || o.Height > render.MaxVideoSide || o.Height%2 != 0,
			o.Frames < 1 || o.Frames > render.MaxFrames,
			vr.fps < 1 || vr.fps > maxFPS,
			int64(o.Width)*int64(o.Height)*int64(o.Frames) > a.maxPixelFrames,
			o.Style != render.Wheels && o.Style != render.Trace,
			o.LineWidth != 0 && !(o.LineWidth >= render.MinLineWidth && o.LineWidth <= render.MaxLineWidth):
			t.Fatalf("accepted out-of-contract video %+v at %d fps", o, vr.fps)
		}
		checkCurve(t, vr.curve)
	})
}

// FuzzRenderStillRequest: RenderStill never panics; it refuses with
// INVALID_ARGUMENT and named field violations, or accepts a request whose
// numbers all lie in their bounds. Small accepted stills are drawn for
// real, whatever curve they carry, and must decode to the size asked for.
func FuzzRenderStillRequest(f *testing.F) {
	// checker's only still slot is taken, so an accepted request waits for
	// it and gives up at once (its context is cancelled): CANCELED means
	// accepted, and nothing is drawn.
	checker := fuzzAnimation()
	checker.stills = queue.New(1)
	if _, err := checker.stills.Acquire(context.Background(), nil, 0); err != nil {
		f.Fatal(err)
	}
	drawer := fuzzAnimation()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	in := func(x, lo, hi int32) bool { return x == 0 || x >= lo && x <= hi }
	f.Fuzz(func(t *testing.T, b []byte) {
		req := &whirlv1.RenderStillRequest{}
		if proto.Unmarshal(b, req) != nil {
			return
		}
		_, err := checker.RenderStill(cancelled, req)
		if status.Code(err) != codes.Canceled {
			checkRefusal(t, err)
			return
		}
		frames := req.GetFrames()
		if frames == 0 {
			frames = render.DefaultFrames
		}
		lw := req.GetAppearance().GetLineWidth()
		switch {
		case !in(req.GetWidth(), render.MinStillSide, render.MaxStillSide), !in(req.GetHeight(), render.MinStillSide, render.MaxStillSide),
			!in(req.GetFrames(), 1, render.MaxFrames),
			req.Frame != nil && (req.GetFrame() < 0 || req.GetFrame() >= frames),
			req.GetStyle() < 0 || req.GetStyle() > whirlv1.Style_STYLE_WHEELS,
			lw != 0 && !(lw >= render.MinLineWidth && lw <= render.MaxLineWidth):
			t.Fatalf("accepted out-of-contract still %v", req)
		}
		if c := req.GetCurve(); c != nil {
			checkCurve(t, curveFromProto(c))
		}
		if w, h := req.GetWidth(), req.GetHeight(); w == 0 || h == 0 || w*h > 64*64 {
			return
		}
		// Huge phases make drawing slow (see TestHugePhaseCostsLikeSmallPhase);
		// leave the fuzzer its speed for everything else.
		for _, w := range req.GetCurve().GetWheels() {
			if math.Abs(w.GetPhase()) > 1e9 {
				return
			}
		}
		resp, err := drawer.RenderStill(context.Background(), req)
		if err != nil {
			t.Fatalf("drawing an accepted still: %v", err)
		}
		img, err := png.Decode(bytes.NewReader(resp.GetPng()))
		if err != nil {
			t.Fatalf("PNG: %v", err)
		}
		if bd := img.Bounds(); int32(bd.Dx()) != req.GetWidth() || int32(bd.Dy()) != req.GetHeight() {
			t.Fatalf("PNG of %v for %dx%d", bd, req.GetWidth(), req.GetHeight())
		}
	})
}

// FuzzGenerateCurve: GenerateCurve never panics; it refuses with
// INVALID_ARGUMENT and named field violations, or returns a valid curve,
// with every number finite and a consistent summary, that honours every
// constraint the request set, and the same curve every time.
func FuzzGenerateCurve(f *testing.F) {
	a := fuzzAnimation()
	f.Fuzz(func(t *testing.T, b []byte) {
		req := &whirlv1.GenerateCurveRequest{}
		if proto.Unmarshal(b, req) != nil {
			return
		}
		got, err := a.GenerateCurve(context.Background(), req)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		c := curveFromProto(got)
		checkCurve(t, c)
		if n := int(req.GetWheels()); n != 0 && len(c.Wheels) != n {
			t.Fatalf("asked for %d wheels, got %d", n, len(c.Wheels))
		}
		if len(c.Wheels) < curve.MinGenWheels {
			t.Fatalf("generated %d wheels", len(c.Wheels))
		}
		if k := int(req.GetKFold()); k != 0 && c.KFold != k {
			t.Fatalf("asked for k_fold %d, got %d", k, c.KFold)
		}
		if req.Congruency != nil && c.Congruency != int(req.GetCongruency()) {
			t.Fatalf("asked for congruency %d, got %d", req.GetCongruency(), c.Congruency)
		}
		for i, w := range c.Wheels {
			var want whirlv1.Shape
			switch shapes := req.GetShapes(); len(shapes) {
			case 0:
			case 1:
				want = shapes[0]
			default:
				want = shapes[i]
			}
			if want != whirlv1.Shape_SHAPE_UNSPECIFIED && whirlv1.Shape(w.Shape) != want {
				t.Fatalf("wheel %d is %v, asked for %v", i, w.Shape, want)
			}
		}
		s := got.GetSummary()
		if int(s.GetWheels()) != len(c.Wheels) || int(s.GetSymmetry()) != c.Symmetry() {
			t.Fatalf("summary %v of %d wheels, symmetry %d", s, len(c.Wheels), c.Symmetry())
		}
		if b := c.Bounds(); math.IsNaN(b) || math.IsInf(b, 0) || b <= 0 {
			t.Fatalf("curve bounds %v", b)
		}
		again, err := a.GenerateCurve(context.Background(), req)
		if err != nil || !proto.Equal(got, again) {
			t.Fatalf("same request, different answer: %v / %v (%v)", got, again, err)
		}
	})
}
