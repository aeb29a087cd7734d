// Package protocolbench measures what the browser protocols cost: the same
// RenderAnimation, end to end at a client that checks every byte, over
// native gRPC and over the Connect protocol (connect-go, binary protobuf)
// through the HTTP listener on HTTP/1.1 and on h2c, against one in-process
// server, in interleaved rounds so the figures of one round share the
// machine's load; each round starts with the next protocol.
package protocolbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/browser"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Protocols in the order each round runs them.
const (
	GRPC         = "gRPC (HTTP/2)"
	ConnectHTTP1 = "Connect, HTTP/1.1"
	ConnectH2C   = "Connect, h2c"
)

// Config is the video rendered and how many rounds.
type Config struct {
	Seed                       uint64
	Width, Height, FPS, Frames int
	Wheels                     int
	Rounds                     int
}

// DefaultConfig is the figure the README quotes: 720×720, 300 frames.
func DefaultConfig() Config {
	return Config{Seed: 42, Width: 720, Height: 720, FPS: 30, Frames: 300, Wheels: 12, Rounds: 3}
}

// Run is one render as a client saw it.
type Run struct {
	Seconds       float64 `json:"seconds"` // request → trailer
	FPS           float64 `json:"fps"`
	FirstFragment float64 `json:"first_fragment_seconds"`
	Bytes         int64   `json:"bytes"`
	SHA256        string  `json:"sha256"`
	// CPU is the seconds of CPU the whirl process (server and client, not
	// ffmpeg) used during the run: what a protocol costs, even when the
	// machine is too busy for wall-clock rates to compare.
	CPU float64 `json:"process_cpu_seconds"`
}

// Result is one protocol's runs, its medians and its ratio to gRPC.
type Result struct {
	Protocol            string  `json:"protocol"`
	Runs                []Run   `json:"runs"`
	MedianFPS           float64 `json:"median_fps"`
	MedianFirstFragment float64 `json:"median_first_fragment_seconds"`
	MedianCPU           float64 `json:"median_process_cpu_seconds"`
	// RatioToGRPC is the median over rounds of this round's frames/s over
	// the same round's gRPC frames/s.
	RatioToGRPC float64 `json:"median_paired_ratio_vs_grpc"`
}

// Report is every protocol's result; all videos are byte-identical.
type Report struct {
	Config  Config   `json:"config"`
	Results []Result `json:"results"`
}

// Measure runs cfg.Rounds rounds of one render per protocol.
func Measure(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Rounds < 1 || cfg.Frames < 1 {
		return nil, errors.New("protocolbench: at least one round of at least one frame")
	}
	env, err := start()
	if err != nil {
		return nil, err
	}
	defer env.close()
	protocols := []string{GRPC, ConnectHTTP1, ConnectH2C}
	rep := &Report{Config: cfg, Results: make([]Result, len(protocols))}
	for i, p := range protocols {
		rep.Results[i].Protocol = p
	}
	// One render first, not counted: the first of a run pays for warming
	// up (ffmpeg's start, the page cache) and would favour whichever came
	// second.
	if _, err := env.render(ctx, cfg, GRPC); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	// Each round starts with the next protocol, so none is always first.
	for round := range cfg.Rounds {
		for k := range protocols {
			i := (round + k) % len(protocols)
			r, err := env.render(ctx, cfg, protocols[i])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", protocols[i], err)
			}
			rep.Results[i].Runs = append(rep.Results[i].Runs, r)
		}
	}
	return rep, rep.summarize()
}

func (rep *Report) summarize() error {
	base := rep.Results[0].Runs
	for i := range rep.Results {
		res := &rep.Results[i]
		var fps, first, cpu, ratio []float64
		for j, r := range res.Runs {
			if r.SHA256 != base[j].SHA256 {
				return fmt.Errorf("%s sent other bytes than gRPC (%s, %s)", res.Protocol, r.SHA256, base[j].SHA256)
			}
			fps = append(fps, r.FPS)
			first = append(first, r.FirstFragment)
			cpu = append(cpu, r.CPU)
			ratio = append(ratio, r.FPS/base[j].FPS)
		}
		res.MedianFPS, res.MedianFirstFragment, res.MedianCPU, res.RatioToGRPC = median(fps), median(first), median(cpu), median(ratio)
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// env is one server as production builds it (spare encoder, niced ffmpeg,
// text logs written to nowhere) with its HTTP listener, and a client per
// protocol.
type env struct {
	srv     *testserver.Server
	leases  *lease.Memory
	hs      *browser.Server
	base    string
	conn    *grpc.ClientConn
	grpc    whirlv1.AnimationServiceClient
	connect map[string]*connect.Client[whirlv1.RenderAnimationRequest, whirlv1.RenderAnimationResponse]
	served  chan error
}

func start() (*env, error) {
	e := &env{leases: lease.NewMemory(lease.Config{}), served: make(chan error, 1)}
	var err error
	e.srv, err = testserver.Serve(service.Config{
		Leases:       e.leases,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Encode:       encode.Options{Nice: encode.DefaultNice},
		SpareEncoder: true,
	})
	if err != nil {
		_ = e.leases.Close()
		return nil, err
	}
	h, err := browser.NewHandler(e.srv.GRPCServer(), browser.Options{})
	if err != nil {
		e.close()
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.close()
		return nil, err
	}
	e.hs = browser.NewServer(h, nil)
	go func() { e.served <- e.hs.Serve(lis) }()
	e.base = "http://" + lis.Addr().String()
	if e.conn, err = grpc.NewClient(e.srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		e.close()
		return nil, err
	}
	e.grpc = whirlv1.NewAnimationServiceClient(e.conn)
	e.connect = map[string]*connect.Client[whirlv1.RenderAnimationRequest, whirlv1.RenderAnimationResponse]{
		ConnectHTTP1: connectClient(e.base, false),
		ConnectH2C:   connectClient(e.base, true),
	}
	return e, nil
}

// connectClient is connect-go's default client (binary protobuf, no
// request compression) over one HTTP version.
func connectClient(base string, h2c bool) *connect.Client[whirlv1.RenderAnimationRequest, whirlv1.RenderAnimationResponse] {
	var p http.Protocols
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	hc := &http.Client{Transport: &http.Transport{Protocols: &p}}
	return connect.NewClient[whirlv1.RenderAnimationRequest, whirlv1.RenderAnimationResponse](hc, base+whirlv1.AnimationService_RenderAnimation_FullMethodName)
}

func (e *env) close() {
	if e.hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.hs.Shutdown(ctx)
		cancel()
		<-e.served
	}
	if e.conn != nil {
		_ = e.conn.Close()
	}
	e.srv.Stop()
	_ = e.leases.Close()
}

// render acquires a lease, streams one animation over protocol and checks
// it with the client's StreamVerifier, timing from the request.
func (e *env) render(ctx context.Context, cfg Config, protocol string) (Run, error) {
	l, err := e.grpc.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "protocolbench"})
	if err != nil {
		return Run{}, fmt.Errorf("acquire lease: %w", err)
	}
	defer func() {
		_, _ = e.grpc.ReleaseLease(context.WithoutCancel(ctx), &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()})
	}()
	req := &whirlv1.RenderAnimationRequest{
		LeaseId: l.GetLeaseId(),
		Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: cfg.Seed, Wheels: int32(cfg.Wheels)}},
		Video: &whirlv1.VideoOptions{Width: int32(cfg.Width), Height: int32(cfg.Height), Fps: int32(cfg.FPS),
			Frames: int32(cfg.Frames), Style: whirlv1.Style_STYLE_WHEELS},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpu0, start := processCPU(), time.Now()
	var stream client.RenderStream
	if c, ok := e.connect[protocol]; ok {
		s, err := c.CallServerStream(ctx, connect.NewRequest(req))
		if err != nil {
			return Run{}, err
		}
		defer s.Close()
		stream = connectStream{s}
	} else if stream, err = e.grpc.RenderAnimation(ctx, req); err != nil {
		return Run{}, err
	}
	var r Run
	v := client.NewStreamVerifier(io.Discard)
	err = v.Receive(stream, func(*whirlv1.RenderAnimationResponse) error {
		if r.FirstFragment == 0 && v.Segments() == 2 { // the init segment, then the first fragment
			r.FirstFragment = time.Since(start).Seconds()
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	r.Seconds, r.CPU = time.Since(start).Seconds(), processCPU()-cpu0
	r.FPS = float64(cfg.Frames) / r.Seconds
	r.Bytes, r.SHA256 = v.Size(), v.Sum()
	return r, nil
}

// connectStream reads a connect-go server stream as client.RenderStream.
type connectStream struct {
	s *connect.ServerStreamForClient[whirlv1.RenderAnimationResponse]
}

func (c connectStream) Recv() (*whirlv1.RenderAnimationResponse, error) {
	if c.s.Receive() {
		return c.s.Msg(), nil
	}
	if err := c.s.Err(); err != nil {
		return nil, err
	}
	return nil, io.EOF
}
