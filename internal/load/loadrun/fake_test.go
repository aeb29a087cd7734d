package loadrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// fakeServer admits everyone (no capacity at all) and streams whatever
// stream() builds, so that the checks of the load command can be tested
// against a server that breaks the contract.
type fakeServer struct {
	whirlv1.UnimplementedAnimationServiceServer
	whirlv1.UnimplementedLeaseAdminServiceServer
	capacity int
	live     atomic.Int64
	seq      atomic.Int64
	stream   func(req *whirlv1.RenderAnimationRequest) []*whirlv1.RenderAnimationResponse

	mu     sync.Mutex
	leases map[string]bool
}

func (f *fakeServer) AcquireLease(context.Context, *whirlv1.AcquireLeaseRequest) (*whirlv1.Lease, error) {
	id := fmt.Sprintf("%032x", f.seq.Add(1))
	f.mu.Lock()
	f.leases[id] = true
	f.mu.Unlock()
	f.live.Add(1)
	return &whirlv1.Lease{LeaseId: id}, nil
}

func (f *fakeServer) ReleaseLease(_ context.Context, req *whirlv1.ReleaseLeaseRequest) (*whirlv1.ReleaseLeaseResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leases[req.GetLeaseId()] {
		delete(f.leases, req.GetLeaseId())
		f.live.Add(-1)
	}
	return &whirlv1.ReleaseLeaseResponse{}, nil
}

func (f *fakeServer) ListLeases(context.Context, *whirlv1.ListLeasesRequest) (*whirlv1.ListLeasesResponse, error) {
	return &whirlv1.ListLeasesResponse{Count: int32(f.live.Load()), Capacity: int32(f.capacity)}, nil
}

func (f *fakeServer) RenderAnimation(req *whirlv1.RenderAnimationRequest, s whirlv1.AnimationService_RenderAnimationServer) error {
	for _, ev := range f.stream(req) {
		if err := s.Send(ev); err != nil {
			return err
		}
	}
	return nil
}

func startFake(t *testing.T, f *fakeServer) string {
	t.Helper()
	f.leases = map[string]bool{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	whirlv1.RegisterAnimationServiceServer(gs, f)
	whirlv1.RegisterLeaseAdminServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// goodStream is a well-formed stream: header, init segment, two fragments
// (the second split over two chunks), trailer.
func goodStream(req *whirlv1.RenderAnimationRequest) []*whirlv1.RenderAnimationResponse {
	v := req.GetVideo()
	parts := []struct {
		data []byte
		end  bool
	}{{[]byte("init-segment"), true}, {[]byte("fragment-1"), true}, {[]byte("fragment-2a"), false}, {[]byte("fragment-2b"), true}}
	evs := []*whirlv1.RenderAnimationResponse{
		{Event: &whirlv1.RenderAnimationResponse_Progress{Progress: &whirlv1.Progress{QueuePosition: 1}}},
		{Event: &whirlv1.RenderAnimationResponse_Header{Header: &whirlv1.RenderHeader{
			Width: v.GetWidth(), Height: v.GetHeight(), Fps: v.GetFps(), Frames: v.GetFrames(),
		}}},
	}
	h := sha256.New()
	var off int64
	for _, p := range parts {
		evs = append(evs, &whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Chunk{Chunk: &whirlv1.MediaChunk{
			Offset: off, Data: p.data, SegmentEnd: p.end,
		}}})
		h.Write(p.data)
		off += int64(len(p.data))
	}
	evs = append(evs, &whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Trailer{Trailer: &whirlv1.RenderTrailer{
		TotalBytes: off, Sha256: hex.EncodeToString(h.Sum(nil)), Frames: v.GetFrames(),
	}}})
	return evs
}

func fakeConfig(addr string) Config {
	return Config{
		Addr: addr, Clients: 4, Duration: 500 * time.Millisecond, Drain: 5 * time.Second,
		AdminToken: "unused-by-the-fake", Width: 64, Height: 64, Frames: 10, FPS: 30,
		MaxBackoff: 50 * time.Millisecond,
	}
}

func TestLoadDetectsOverAdmission(t *testing.T) {
	t.Parallel()
	f := &fakeServer{capacity: 2, stream: goodStream}
	cfg := fakeConfig(startFake(t, f))
	cfg.NoRender, cfg.Hold = true, 200*time.Millisecond
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep.Judge(2)
	if !rep.OverAdmission || rep.OK {
		t.Fatalf("over-admission not reported: %+v", rep.Leases)
	}
	if rep.Leases.MaxHeld != 4 || rep.Leases.OverAdmitted == 0 {
		t.Errorf("clients held max %d (%d over), want 4 and some over capacity 2", rep.Leases.MaxHeld, rep.Leases.OverAdmitted)
	}
	if rep.Leases.MaxListed <= 2 || rep.Leases.PollOver == 0 {
		t.Errorf("ListLeases max %d (%d polls over), want > 2", rep.Leases.MaxListed, rep.Leases.PollOver)
	}
}

func TestLoadChecksStreams(t *testing.T) {
	t.Parallel()
	// Each case breaks a good stream in one way.
	tests := []struct {
		name  string
		edit  func([]*whirlv1.RenderAnimationResponse) []*whirlv1.RenderAnimationResponse
		fails string // "" = a valid stream
	}{
		{"valid", func(e []*whirlv1.RenderAnimationResponse) []*whirlv1.RenderAnimationResponse { return e }, ""},
		{"no trailer", func(e []*whirlv1.RenderAnimationResponse) []*whirlv1.RenderAnimationResponse { return e[:len(e)-1] }, failNoTrailer},
		{"sha mismatch", func(e []*whirlv1.RenderAnimationResponse) []*whirlv1.RenderAnimationResponse {
			e[len(e)-1].GetTrailer().Sha256 = hex.EncodeToString(make([]byte, 32))
			return e
		}, failSHA},
		{"offset gap", func(e []*whirlv1.RenderAnimationResponse) []*whirlv1.RenderAnimationResponse {
			e[3].GetChunk().Offset++
			return e
		}, failOffset},
		{"chunk before header", func(e []*whirlv1.RenderAnimationResponse) []*whirlv1.RenderAnimationResponse {
			e[1], e[2] = e[2], e[1]
			return e
		}, failOrder},
		{"wrong length", func(e []*whirlv1.RenderAnimationResponse) []*whirlv1.RenderAnimationResponse {
			e[len(e)-1].GetTrailer().TotalBytes++
			return e
		}, failTotal},
		{"no media fragment", func(e []*whirlv1.RenderAnimationResponse) []*whirlv1.RenderAnimationResponse {
			for _, ev := range e[3:] {
				if c := ev.GetChunk(); c != nil {
					c.SegmentEnd = false
				}
			}
			return e
		}, failNoFragment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{capacity: 100, stream: func(req *whirlv1.RenderAnimationRequest) []*whirlv1.RenderAnimationResponse {
				return tt.edit(goodStream(req))
			}}
			cfg := fakeConfig(startFake(t, f))
			cfg.Duration = 200 * time.Millisecond
			rep, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tt.fails == "" {
				if rep.Failed != 0 || rep.Completed == 0 || rep.FirstFragment.N != rep.Completed {
					t.Fatalf("valid stream: %d failed %v, %d completed", rep.Failed, rep.Failures, rep.Completed)
				}
				return
			}
			if rep.Completed != 0 || rep.Failed == 0 || rep.Failures[tt.fails] != rep.Failed {
				t.Fatalf("want every cycle failed with %s; got %d completed, failures %v", tt.fails, rep.Completed, rep.Failures)
			}
		})
	}
}
