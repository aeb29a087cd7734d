package service_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"go.uber.org/goleak"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Helpers shared by the hardening tests (leaks, stuck clients, faults,
// bounds). They build on pids, collect, processExists and adminToken from
// the other _ext_test files of this package.

// harness is a real in-process server with every client the hardening tests
// need and a record of every encoder process it started.
type harness struct {
	srv    *testserver.Server
	api    whirlv1.AnimationServiceClient
	admin  whirlv1.LeaseAdminServiceClient
	health healthpb.HealthClient
	pids   *pids
}

// encoderWrap, when not nil, wraps each started encoder (after its PID is
// recorded); o tells which request it serves.
type encoderWrap func(enc service.FrameEncoder, o encode.Options) service.FrameEncoder

// startHarness serves cfg with a fresh memory lease registry of capacity
// leases (unless cfg.Leases is set) and the admin token, recording encoder
// PIDs and applying wrap (if any) to each encoder.
func startHarness(t *testing.T, cfg service.Config, capacity int, wrap encoderWrap) harness {
	t.Helper()
	if cfg.Leases == nil {
		reg := lease.NewMemory(lease.Config{Capacity: capacity})
		t.Cleanup(func() { _ = reg.Close() })
		cfg.Leases = reg
	}
	cfg.AdminToken = adminToken
	p := &pids{}
	if cfg.StartEncoder == nil {
		cfg.StartEncoder = func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (service.FrameEncoder, error) {
			enc, err := encode.Start(ctx, o, sink)
			if err != nil {
				return nil, err
			}
			p.mu.Lock()
			p.list = append(p.list, enc.PID())
			p.mu.Unlock()
			if wrap != nil {
				return wrap(enc, o), nil
			}
			return enc, nil
		}
	}
	srv := testserver.Start(t, cfg)
	conn := testserver.Dial(t, srv.Addr)
	return harness{
		srv:    srv,
		api:    whirlv1.NewAnimationServiceClient(conn),
		admin:  whirlv1.NewLeaseAdminServiceClient(conn),
		health: healthpb.NewHealthClient(conn),
		pids:   p,
	}
}

// heldLease is a lease the test holds: the secret token and the public handle.
type heldLease struct{ token, handle string }

func (h harness) acquireN(t *testing.T, n int) []heldLease {
	t.Helper()
	out := make([]heldLease, n)
	for i := range out {
		l, err := h.api.AcquireLease(context.Background(), &whirlv1.AcquireLeaseRequest{Holder: fmt.Sprintf("%s-%d", t.Name(), i)})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = heldLease{l.GetLeaseId(), l.GetHandle()}
	}
	return out
}

func adminCtx() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
}

// settle bounds how long the server may take to let go of what a call held
// once the call has ended. It only bounds a failure: a passing test waits
// for the condition, not for settle.
const settle = 15 * time.Second

// eventually polls cond every 10ms until it returns "" or d passes, then
// fails with its last complaint.
func eventually(t *testing.T, d time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: still %s after %v", what, msg, d)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertQuiescent checks that after the calls of a test have ended the
// server holds no render slot, no encoder process (nor anything in its
// process group) is alive, and every lease in leases is live, unpinned and
// renewable.
func (h harness) assertQuiescent(t *testing.T, leases []heldLease) {
	t.Helper()
	eventually(t, settle, "render slots", func() string {
		if run, q := h.srv.RenderStats(); run != 0 || q != 0 {
			return fmt.Sprintf("%d running, %d queued", run, q)
		}
		return ""
	})
	eventually(t, settle, "encoder processes", func() string {
		for _, pid := range h.pids.all() {
			if processExists(pid) {
				return fmt.Sprintf("pid %d alive", pid)
			}
			if m := groupMembers(pid); len(m) > 0 {
				return fmt.Sprintf("process group %d still has %v", pid, m)
			}
		}
		return ""
	})
	eventually(t, settle, "leases", func() string {
		list, err := h.admin.ListLeases(adminCtx(), &whirlv1.ListLeasesRequest{})
		if err != nil {
			return err.Error()
		}
		live := map[string]bool{}
		for _, l := range list.GetLeases() {
			if l.GetRendering() {
				return fmt.Sprintf("lease %s rendering", l.GetHandle())
			}
			live[l.GetHandle()] = true
		}
		for _, l := range leases {
			if !live[l.handle] {
				return fmt.Sprintf("lease %s gone from %v", l.handle, list.GetLeases())
			}
		}
		return ""
	})
	for _, l := range leases {
		if _, err := h.api.RenewLease(context.Background(), &whirlv1.RenewLeaseRequest{LeaseId: l.token}); err != nil {
			t.Errorf("renew lease %s: %v", l.handle, err)
		}
	}
}

// waitNotRendering waits until the server has unpinned l, which it may do
// a moment after the client has seen l's stream end.
func (h harness) waitNotRendering(t *testing.T, l heldLease) {
	t.Helper()
	eventually(t, settle, "lease "+l.handle+" unpinned", func() string {
		list, err := h.admin.ListLeases(adminCtx(), &whirlv1.ListLeasesRequest{})
		if err != nil {
			return err.Error()
		}
		for _, x := range list.GetLeases() {
			if x.GetHandle() == l.handle && x.GetRendering() {
				return "rendering"
			}
		}
		return ""
	})
}

// noGoroutinesLeft waits up to settle for every goroutine that ignore (a
// goleak.IgnoreCurrent taken before the calls began) does not cover to end,
// then fails naming, with its stack, each one still running. goleak.Find
// backs off between looks on its own.
func noGoroutinesLeft(t *testing.T, ignore goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		err := goleak.Find(ignore)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("goroutines left behind %v after the calls ended: %v", settle, err)
			return
		}
	}
}

// groupMembers lists live (non-zombie) processes whose process group is
// pgid: encode puts each ffmpeg in a group of its own, so this finds
// anything a fake ffmpeg script started too.
func groupMembers(pgid int) []int {
	procs, _ := procfs.AllProcs()
	var out []int
	for _, p := range procs {
		st, err := p.Stat()
		if err == nil && st.PGRP == pgid && st.State != "Z" {
			out = append(out, p.PID)
		}
	}
	return out
}

// heapInuse is HeapInuse after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// vmRSS is this process's resident set from /proc/self/status, in bytes.
func vmRSS(t *testing.T) uint64 {
	t.Helper()
	self, err := procfs.Self()
	if err != nil {
		t.Fatal(err)
	}
	st, err := self.NewStatus()
	if err != nil || st.VmRSS == 0 {
		t.Fatalf("no VmRSS: %v", err)
	}
	return st.VmRSS
}

const mib = 1 << 20

// countingEncoder counts frames the encoder accepted and signals each on
// wrote (capacity 1) without blocking.
type countingEncoder struct {
	service.FrameEncoder
	n     *atomic.Int64
	wrote chan struct{}
}

func (c countingEncoder) WriteFrame(yuv []byte) error {
	err := c.FrameEncoder.WriteFrame(yuv)
	if err == nil {
		c.n.Add(1)
		select {
		case c.wrote <- struct{}{}:
		default:
		}
	}
	return err
}

// tinyVideo is a cheap animation request: 64×64 of a generated curve.
func tinyVideo(leaseID string, seed uint64, frames int32) *whirlv1.RenderAnimationRequest {
	return &whirlv1.RenderAnimationRequest{
		LeaseId: leaseID,
		Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: seed}},
		Video:   &whirlv1.VideoOptions{Width: 64, Height: 64, Fps: 30, Frames: frames},
	}
}
