// Package protocolbench measures what the browser protocols cost: the same
// RenderAnimation, end to end at a client that checks every byte, over
// native gRPC and over the Connect protocol (connect-go, binary protobuf)
// through the HTTP listener on HTTP/1.1 and on h2c, against one in-process
// server built as in production (benchrun's), in interleaved rounds so the
// figures of one round share the machine's load; each round starts with the
// next protocol.
package protocolbench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/bench/benchrun"
	"github.com/whirl-dev/whirl/internal/browser"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Protocols in the order of the first round.
const (
	GRPC         = "gRPC (HTTP/2)"
	ConnectHTTP1 = "Connect, HTTP/1.1"
	ConnectH2C   = "Connect, h2c"
)

// Result is one protocol's runs, its medians and its ratio to gRPC.
type Result struct {
	Protocol            string            `json:"protocol"`
	Runs                []benchrun.E2ERun `json:"runs"`
	MedianFPS           float64           `json:"median_fps"`
	MedianFirstFragment float64           `json:"median_first_fragment_seconds"`
	// MedianProcCPU is the whirl process's CPU seconds per video (server
	// and client; ffmpeg, the same for every protocol, is apart): what a
	// protocol costs, even when the machine is too busy for wall-clock
	// rates to compare.
	MedianProcCPU float64 `json:"median_process_cpu_seconds"`
	// RatioToGRPC is the median over rounds of this round's frames/s over
	// the same round's gRPC frames/s.
	RatioToGRPC float64 `json:"median_paired_ratio_vs_grpc"`
}

// Report is every protocol's result; all videos are byte-identical.
type Report struct {
	Config  benchrun.Config `json:"config"`
	Results []Result        `json:"results"`
}

// Measure runs cfg.Reps rounds of one render per protocol, of the video cfg
// describes (size, rate, length, seed, wheels, render workers).
func Measure(ctx context.Context, cfg benchrun.Config) (*Report, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	srv, err := benchrun.StartServer(cfg.RenderWorkers)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	base, stop, err := serveHTTP(srv)
	if err != nil {
		return nil, err
	}
	defer stop()
	open := map[string]benchrun.OpenStream{
		GRPC:         nil,
		ConnectHTTP1: connectOpener(base, false),
		ConnectH2C:   connectOpener(base, true),
	}
	protocols := []string{GRPC, ConnectHTTP1, ConnectH2C}
	rep := &Report{Config: cfg, Results: make([]Result, len(protocols))}
	for i, p := range protocols {
		rep.Results[i].Protocol = p
	}
	// One render first, not counted: the first of a run pays for warming
	// up (ffmpeg's start, the page cache) and would favour whichever came
	// second.
	if _, err := srv.EndToEnd(ctx, cfg, nil); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	for round := range cfg.Reps {
		for k := range protocols {
			i := (round + k) % len(protocols)
			r, err := srv.EndToEnd(ctx, cfg, open[protocols[i]])
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
			cpu = append(cpu, r.ProcCPU)
			ratio = append(ratio, r.FPS/base[j].FPS)
		}
		res.MedianFPS, res.MedianFirstFragment, res.MedianProcCPU, res.RatioToGRPC = median(fps), median(first), median(cpu), median(ratio)
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

// serveHTTP puts the HTTP listener in front of srv on 127.0.0.1:0, as the
// server binary does; stop shuts it down.
func serveHTTP(srv *benchrun.Server) (base string, stop func(), err error) {
	h, err := browser.NewHandler(srv.GRPCServer(), browser.Options{})
	if err != nil {
		return "", nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := browser.NewServer(h, nil)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(lis) }()
	return "http://" + lis.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		<-served
	}, nil
}

// connectOpener opens RenderAnimation calls with connect-go's default
// client (binary protobuf, no request compression) over one HTTP version.
func connectOpener(base string, h2c bool) benchrun.OpenStream {
	var p http.Protocols
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	c := connect.NewClient[whirlv1.RenderAnimationRequest, whirlv1.RenderAnimationResponse](
		&http.Client{Transport: &http.Transport{Protocols: &p}}, base+whirlv1.AnimationService_RenderAnimation_FullMethodName)
	return func(ctx context.Context, req *whirlv1.RenderAnimationRequest) (client.RenderStream, error) {
		s, err := c.CallServerStream(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return connectStream{s}, nil
	}
}

// connectStream reads a connect-go server stream as client.RenderStream,
// closing it at the end.
type connectStream struct {
	s *connect.ServerStreamForClient[whirlv1.RenderAnimationResponse]
}

func (c connectStream) Recv() (*whirlv1.RenderAnimationResponse, error) {
	if c.s.Receive() {
		return c.s.Msg(), nil
	}
	err := c.s.Err()
	_ = c.s.Close()
	if err == nil {
		err = io.EOF
	}
	return nil, err
}
