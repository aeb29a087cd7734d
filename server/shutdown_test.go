package main_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// procStat reads /proc/<pid>/stat.
func procStat(pid int) (procfs.ProcStat, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return p.Stat()
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, err := procStat(pid)
	return err == nil && st.State != "Z"
}

// childrenOf lists the live ffmpeg children of ppid.
func childrenOf(ppid int) []int {
	procs, _ := procfs.AllProcs()
	var out []int
	for _, p := range procs {
		st, err := p.Stat()
		if err == nil && st.PPID == ppid && st.Comm == "ffmpeg" && st.State != "Z" {
			out = append(out, p.PID)
		}
	}
	return out
}

// streamResult is how one RenderAnimation stream ended, seen by the client.
type streamResult struct {
	header, trailer bool
	chunks          int
	lastChunk, end  time.Time
	err             error
}

// TestShutdownUnderLoad proves the SIGTERM contract of the real binary
// with five streams running: health turns NOT_SERVING at once (a Watch
// opened before the signal is told while the streams still run; Check on
// the open connection never says SERVING again), new calls are refused
// UNAVAILABLE, running streams go on during the grace period, and then:
//   - long renders that cannot finish in time (grace 3s) are cut with an
//     error status at the end of the grace (never a clean end without a
//     trailer), and their ffmpeg children do not outlive the server;
//   - short renders finish normally, each with its trailer, and the server
//     exits as soon as they have, without waiting out the grace (30s, far
//     more than they need even on a loaded machine);
//
// and the process exits 0 within grace + 5s. Everything is asserted on the
// order of events; the only durations are the grace itself, as lower
// bounds, and upper bounds far beyond what a passing run takes.
func TestShutdownUnderLoad(t *testing.T) {
	tests := []struct {
		name          string
		grace         time.Duration
		width, height int32
		frames        int32
		finishes      bool
	}{
		{"long renders are cut at the grace", 3 * time.Second, 640, 480, 3600, false},
		{"short renders finish within the grace", 30 * time.Second, 160, 120, 150, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			grace := tt.grace
			// An encoder for each of the five renders: with fewer, renders
			// after the first ones wait for an encoder before their header.
			p := startServer(t, "--shutdown-grace", grace.String(), "--capacity", "5", "--render-slots", "5", "--encode-parallelism", "5")
			conn := dial(t, p.addr)
			api := whirlv1.NewAnimationServiceClient(conn)
			health := healthpb.NewHealthClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			watchCtx, stopWatch := context.WithCancel(ctx)
			defer stopWatch()
			watch, err := health.Watch(watchCtx, &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("health before the signal: %v, %v", st, err)
			}
			// Five streams, each on its own lease, all under way.
			var (
				wg      sync.WaitGroup
				results [5]streamResult
				headers = make(chan struct{}, 5)
				ended   atomic.Int32 // streams that have ended
			)
			for i := range results {
				l, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: fmt.Sprintf("shutdown-%d", i)})
				if err != nil {
					t.Fatal(err)
				}
				stream, err := api.RenderAnimation(ctx, &whirlv1.RenderAnimationRequest{
					LeaseId: l.GetLeaseId(),
					Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: uint64(100 + i)}},
					Video:   &whirlv1.VideoOptions{Width: tt.width, Height: tt.height, Fps: 30, Frames: tt.frames},
				})
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					defer ended.Add(1)
					r := &results[i]
					for {
						ev, err := stream.Recv()
						if err != nil {
							if !errors.Is(err, io.EOF) {
								r.err = err
							}
							return
						}
						switch {
						case ev.GetHeader() != nil:
							r.header = true
							headers <- struct{}{}
						case ev.GetChunk() != nil:
							r.chunks++
							r.lastChunk = time.Now()
						case ev.GetTrailer() != nil:
							r.trailer = true
							r.end = time.Now()
						}
					}
				})
			}
			for range results {
				select {
				case <-headers:
				case <-time.After(30 * time.Second):
					cancel()
					wg.Wait()
					t.Fatalf("streams did not all start: %+v; logs:\n%s", results, p.logs)
				}
			}
			ffmpegs := childrenOf(p.srv.PID)

			if err := p.srv.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			signalled := time.Now()

			// NOT_SERVING at once, to a watcher: it is told while the server
			// still runs, and, for renders that outlast the grace, before any
			// of them has ended...
			watched := make(chan error, 1)
			go func() {
				st, err := watch.Recv()
				if err == nil && st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
					err = fmt.Errorf("status %v", st.GetStatus())
				}
				watched <- err
			}()
			select {
			case err := <-watched:
				if err != nil {
					t.Errorf("health watch after SIGTERM: %v, want NOT_SERVING", err)
				}
				if n := ended.Load(); !tt.finishes && n > 0 {
					t.Errorf("health watch told NOT_SERVING only after %d streams had ended", n)
				}
			case <-time.After(grace + 5*time.Second):
				t.Errorf("health watch saw no NOT_SERVING within %v of SIGTERM", grace+5*time.Second)
			}
			stopWatch() // an open watch would hold the graceful stop
			// ... and to Check on the open connection, which from then on
			// says NOT_SERVING or is refused UNAVAILABLE, never SERVING.
			for range 3 {
				st, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
				if !(err == nil && st.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING) && status.Code(err) != codes.Unavailable {
					t.Errorf("health Check after the watch saw NOT_SERVING: %v, %v", st, err)
				}
			}
			// New calls are refused, on the open connection and on a new one,
			// once the graceful stop begins. It follows the drain of the HTTP
			// front end (service.Server.DrainFirst, quick with no HTTP call
			// under way), during which the gRPC server still serves: until
			// then a call may get its usual answer. Each try is a round trip,
			// which paces the loop.
			refused := func(what string, call func() error, usual func(error) bool) {
				t.Helper()
				for deadline := time.Now().Add(grace); ; {
					err := call()
					switch {
					case status.Code(err) == codes.Unavailable:
						return
					case !usual(err):
						t.Errorf("%s during shutdown: %v, want Unavailable", what, err)
						return
					case time.Now().After(deadline):
						t.Errorf("%s still served %v after SIGTERM, want Unavailable", what, grace)
						return
					}
				}
			}
			refused("AcquireLease on the open connection", func() error {
				_, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "late"})
				return err
			}, func(err error) bool { return status.Code(err) == codes.ResourceExhausted }) // all five leases are held
			fresh := whirlv1.NewAnimationServiceClient(dial(t, p.addr))
			refused("GenerateCurve on a new connection", func() error {
				_, err := fresh.GenerateCurve(ctx, &whirlv1.GenerateCurveRequest{})
				return err
			}, func(err error) bool { return err == nil })

			var exitErr error
			select {
			case exitErr = <-p.done:
				p.done <- exitErr // for startServer's cleanup
			case <-time.After(grace + 5*time.Second):
				t.Fatalf("server still running %v after SIGTERM; logs:\n%s", grace+5*time.Second, p.logs)
			}
			exited := time.Since(signalled)
			wg.Wait()
			if exitErr != nil {
				t.Errorf("exit status after SIGTERM: %v", exitErr)
			}
			cut := strings.Contains(p.logs.String(), "grace period over")
			t.Logf("exited %v after SIGTERM; cut at the grace: %v", exited.Round(time.Millisecond), cut)
			inFlight := 0
			for i, r := range results {
				if r.err == nil && !r.trailer {
					t.Errorf("stream %d ended cleanly without a trailer after %d chunks", i, r.chunks)
				}
				if tt.finishes {
					if r.err != nil || !r.trailer {
						t.Errorf("short stream %d: %v, trailer %v; want a trailer", i, r.err, r.trailer)
					}
					if r.end.After(signalled) {
						inFlight++
					}
					continue
				}
				if r.err == nil || r.trailer {
					t.Errorf("long stream %d: err %v, trailer %v; want an error status", i, r.err, r.trailer)
				}
				if !r.lastChunk.After(signalled) {
					t.Errorf("long stream %d: no chunk after SIGTERM; streams must run on during the grace", i)
				}
				t.Logf("long stream %d: %d chunks, ended %v", i, r.chunks, status.Code(r.err))
			}
			if tt.finishes && inFlight == 0 {
				t.Error("every short stream finished before SIGTERM: make the renders longer")
			}
			if tt.finishes {
				t.Logf("%d short streams were in flight at SIGTERM", inFlight)
			}
			if tt.finishes && (cut || exited >= grace) {
				t.Errorf("short renders: exited %v after SIGTERM (cut at the grace: %v); should exit once they finish", exited, cut)
			}
			if !tt.finishes && (!cut || exited < grace) {
				t.Errorf("long renders: exited %v after SIGTERM, cut at the grace: %v", exited, cut)
			}
			// The server has exited: its children are killed or being reaped
			// by init. No event marks the end of a process we did not start,
			// so poll, with a bound far beyond what that takes.
			deadline := time.Now().Add(10 * time.Second)
			for _, pid := range ffmpegs {
				for alive(pid) && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if alive(pid) {
					t.Errorf("ffmpeg %d outlived the server by 10s", pid)
				}
			}
			// Five renders' segment encoders (at most five at once), plus at
			// most the six spares (one per encoder and one more) the server
			// keeps loaded for the next segments.
			if !tt.finishes && (len(ffmpegs) < 5 || len(ffmpegs) > 11) {
				t.Errorf("%d ffmpeg children while five streams ran", len(ffmpegs))
			}
		})
	}
}

// TestServerWithoutFFmpeg proves that the binary started with a missing
// ffmpeg still serves: health reports whirl.render NOT_SERVING (and the
// rest SERVING), lease RPCs, GenerateCurve and RenderStill work, and
// RenderAnimation is refused UNAVAILABLE with the reason.
func TestServerWithoutFFmpeg(t *testing.T) {
	p := startServer(t, "--ffmpeg", "/nonexistent/ffmpeg")
	conn := dial(t, p.addr)
	api := whirlv1.NewAnimationServiceClient(conn)
	health := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for svc, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
		"":                          healthpb.HealthCheckResponse_SERVING,
		"whirl.v1.AnimationService": healthpb.HealthCheckResponse_SERVING,
		"whirl.leases":              healthpb.HealthCheckResponse_SERVING,
		"whirl.render":              healthpb.HealthCheckResponse_NOT_SERVING,
	} {
		st, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || st.GetStatus() != want {
			t.Errorf("health %q: %v, %v; want %v", svc, st, err, want)
		}
	}
	l, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "no-ffmpeg"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.RenewLease(ctx, &whirlv1.RenewLeaseRequest{LeaseId: l.GetLeaseId()}); err != nil {
		t.Errorf("RenewLease: %v", err)
	}
	if _, err := api.GenerateCurve(ctx, &whirlv1.GenerateCurveRequest{Seed: 5}); err != nil {
		t.Errorf("GenerateCurve: %v", err)
	}
	if _, err := api.RenderStill(ctx, &whirlv1.RenderStillRequest{
		Source: &whirlv1.RenderStillRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 5}}, Width: 64, Height: 64,
	}); err != nil {
		t.Errorf("RenderStill: %v", err)
	}
	stream, err := api.RenderAnimation(ctx, &whirlv1.RenderAnimationRequest{
		LeaseId: l.GetLeaseId(),
		Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 5}},
		Video:   &whirlv1.VideoOptions{Width: 64, Height: 64, Frames: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "ffmpeg") {
		t.Errorf("RenderAnimation without ffmpeg: %v, want Unavailable naming ffmpeg", err)
	}
	if _, err := api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()}); err != nil {
		t.Errorf("ReleaseLease: %v", err)
	}
	if !strings.Contains(p.logs.String(), "renders disabled") {
		t.Errorf("no log line saying renders are disabled:\n%s", p.logs)
	}
}
