package benchrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// EndToEnd is the runs at the gRPC client and their medians.
type EndToEnd struct {
	// WarmUp is the first render of a fresh server, before the measured
	// runs and left out of every figure: its spare ffmpeg processes may
	// still be starting and its caches are cold, which a server that has
	// been up for more than a second no longer shows.
	WarmUp E2ERun   `json:"warm_up"`
	Runs   []E2ERun `json:"runs"`
	// MedianFPS is frames / (request → trailer), median over the runs.
	MedianFPS float64 `json:"median_fps"`
	// MedianFirstFragment is request → first complete media fragment.
	MedianFirstFragment float64 `json:"median_first_fragment_seconds"`
	MedianSeconds       float64 `json:"median_seconds"`
	// MedianCPU is CPU seconds per run: this process plus ffmpeg.
	MedianCPU      float64 `json:"median_cpu_seconds"`
	MedianProcCPU  float64 `json:"median_process_cpu_seconds"`
	MedianChildCPU float64 `json:"median_ffmpeg_cpu_seconds"`
	Bytes          int64   `json:"bytes"`
	SHA256         string  `json:"sha256"`
	Deterministic  bool    `json:"deterministic"`
	// PairedRatio is the median over interleaved rounds of this round's
	// end-to-end frames/s over the same round's frames/s of one ffmpeg with
	// whirl's preset, CRF and GOP and x264's threading, reading the frames
	// from a file; 0 when the runs were not interleaved.
	PairedRatio float64 `json:"median_paired_ratio_vs_ffmpeg_alone,omitempty"`
	// MedianHeader is request → header (the init segment follows at once).
	MedianHeader float64 `json:"median_header_seconds"`
	// MedianHeaderToFirst is header → first fragment, median of the runs.
	MedianHeaderToFirst float64 `json:"median_header_to_first_fragment_seconds"`
}

// E2ERun is one RenderAnimation as the client saw it.
type E2ERun struct {
	Seconds float64 `json:"seconds"` // request sent → trailer received
	FPS     float64 `json:"fps"`
	// Header is request → header (the init segment follows it at once).
	Header float64 `json:"header_seconds"`
	// FirstFragment is request → the chunk that completes the first
	// moof+mdat.
	FirstFragment float64 `json:"first_fragment_seconds"`
	// Source is where the trailer says the bytes came from.
	Source    string `json:"source"`
	Bytes     int64  `json:"bytes"`
	Chunks    int    `json:"chunks"`
	Fragments int    `json:"fragments"` // media segments (segment_end after the init)
	SHA256    string `json:"sha256"`
	// The trailer's own account of the render.
	ServerElapsed float64 `json:"server_elapsed_seconds"`
	ServerRender  float64 `json:"server_render_seconds"`
	ServerEncode  float64 `json:"server_encode_seconds"`
	// CPU time during the run: this process (server and client) and its
	// reaped children (ffmpeg).
	ProcCPU  float64 `json:"process_cpu_seconds"`
	ChildCPU float64 `json:"ffmpeg_cpu_seconds"`
}

func (e *EndToEnd) summarize() {
	var fps, first, secs, cpu, proc, child, header, gap []float64
	e.Deterministic = true
	for i, r := range e.Runs {
		fps = append(fps, r.FPS)
		first = append(first, r.FirstFragment)
		header = append(header, r.Header)
		gap = append(gap, r.FirstFragment-r.Header)
		secs = append(secs, r.Seconds)
		cpu = append(cpu, r.ProcCPU+r.ChildCPU)
		proc = append(proc, r.ProcCPU)
		child = append(child, r.ChildCPU)
		if i > 0 && r.SHA256 != e.Runs[0].SHA256 {
			e.Deterministic = false
		}
	}
	e.MedianFPS, e.MedianFirstFragment, e.MedianSeconds = median(fps), median(first), median(secs)
	e.MedianCPU, e.MedianProcCPU, e.MedianChildCPU = median(cpu), median(proc), median(child)
	e.MedianHeader, e.MedianHeaderToFirst = median(header), median(gap)
	if len(e.Runs) > 0 {
		e.Bytes, e.SHA256 = e.Runs[0].Bytes, e.Runs[0].SHA256
	}
}

// Server is an in-process whirl server on a loopback port and a gRPC client
// of it.
type Server struct {
	srv    *testserver.Server
	leases *lease.Memory
	conn   *grpc.ClientConn
	api    whirlv1.AnimationServiceClient
}

// StartServer builds the server as the production command does
// (service.NewServer, encoder settings and slots at their defaults) with an
// in-memory lease registry, serves it on 127.0.0.1:0 and dials it over TCP.
// workers > 0 overrides the render workers.
func StartServer(workers int) (*Server, error) { return startServer(workers, nil) }

// startServer is StartServer with videos, if not nil, as the server's video
// cache.
func startServer(workers int, videos *cache.Store) (*Server, error) {
	leases := lease.NewMemory(lease.Config{})
	srv, err := testserver.Serve(service.Config{
		Cache:  videos,
		Leases: leases,
		// Production logs every call as text; the same handler writing to
		// nowhere keeps that cost without the noise.
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		RenderWorkers: workers,
		// as the server binary does
		Encode:       encode.Options{Nice: encode.DefaultNice},
		SpareEncoder: true,
	})
	if err != nil {
		_ = leases.Close()
		return nil, err
	}
	s := &Server{srv: srv, leases: leases}
	s.conn, err = grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.Close()
		return nil, err
	}
	s.api = whirlv1.NewAnimationServiceClient(s.conn)
	return s, nil
}

// GRPCServer is the server's grpc.Server, for a front end carrying other
// protocols to it (see service.Server.GRPCServer).
func (s *Server) GRPCServer() *grpc.Server { return s.srv.GRPCServer() }

// Close stops the server and closes the client.
func (s *Server) Close() {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.srv.Stop()
	_ = s.leases.Close()
}

// OpenStream starts a RenderAnimation call: over the server's own gRPC
// connection (nil), or any other way to reach the same server.
type OpenStream func(ctx context.Context, req *whirlv1.RenderAnimationRequest) (client.RenderStream, error)

// EndToEnd acquires a lease, streams one animation opened by open (nil:
// native gRPC) through the client's StreamVerifier, timing from the moment
// the request is sent, and releases the lease.
func (s *Server) EndToEnd(ctx context.Context, cfg Config, open OpenStream) (E2ERun, error) {
	if open == nil {
		open = func(ctx context.Context, req *whirlv1.RenderAnimationRequest) (client.RenderStream, error) {
			return s.api.RenderAnimation(ctx, req)
		}
	}
	l, err := s.api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "bench"})
	if err != nil {
		return E2ERun{}, fmt.Errorf("acquire lease: %w", err)
	}
	defer func() {
		_, _ = s.api.ReleaseLease(context.WithoutCancel(ctx), &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()})
	}()
	req := &whirlv1.RenderAnimationRequest{
		LeaseId: l.GetLeaseId(),
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{
			Seed: cfg.Seed, Wheels: int32(cfg.Wheels),
		}},
		Video: &whirlv1.VideoOptions{
			Width: int32(cfg.Width), Height: int32(cfg.Height), Fps: int32(cfg.FPS),
			Frames: int32(cfg.Frames), Style: whirlv1.Style_STYLE_WHEELS,
		},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	cpu0 := readCPU()
	start := time.Now()
	stream, err := open(ctx, req)
	if err != nil {
		return E2ERun{}, err
	}
	var r E2ERun
	v := client.NewStreamVerifier(io.Discard)
	err = v.Receive(stream, func(ev *whirlv1.RenderAnimationResponse) error {
		r.observe(ev, v, time.Since(start))
		return nil
	})
	if err != nil {
		return r, err
	}
	cpu1 := readCPU()
	trailer := v.Trailer()
	r.FPS = float64(cfg.Frames) / r.Seconds
	r.Bytes, r.Chunks, r.SHA256 = v.Size(), v.Chunks(), v.Sum()
	r.ProcCPU, r.ChildCPU = cpu1.self-cpu0.self, cpu1.children-cpu0.children
	r.Source = trailer.GetSource().String()
	r.ServerElapsed = trailer.GetElapsed().AsDuration().Seconds()
	r.ServerRender = trailer.GetRenderTime().AsDuration().Seconds()
	r.ServerEncode = trailer.GetEncodeTime().AsDuration().Seconds()
	switch {
	case int(trailer.GetFrames()) != cfg.Frames:
		return r, fmt.Errorf("trailer says %d frames, want %d", trailer.GetFrames(), cfg.Frames)
	case r.Fragments == 0:
		return r, errors.New("no media fragment received")
	}
	return r, nil
}

// observe times the events of a run as they arrive, at since from the
// request: the header, the first media fragment (the second segment end;
// the first ends the init segment) and the trailer.
func (r *E2ERun) observe(ev *whirlv1.RenderAnimationResponse, v *client.StreamVerifier, since time.Duration) {
	switch ev.GetEvent().(type) {
	case *whirlv1.RenderAnimationResponse_Header:
		r.Header = since.Seconds()
	case *whirlv1.RenderAnimationResponse_Chunk:
		if r.Fragments = max(v.Segments()-1, 0); r.Fragments == 1 && r.FirstFragment == 0 {
			r.FirstFragment = since.Seconds()
		}
	case *whirlv1.RenderAnimationResponse_Trailer:
		r.Seconds = since.Seconds()
	}
}
