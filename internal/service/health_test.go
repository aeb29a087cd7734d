package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestWatchLeaseHealth drives a lease store down and up again and checks
// that the whirl.leases entry follows on the next poll, and that each change
// is logged once however many polls see it.
func TestWatchLeaseHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const every = time.Second
		var logs bytes.Buffer
		var down atomic.Bool
		hs := newHealth(nil)
		ctx, cancel := context.WithCancel(t.Context())
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			watchLeaseHealth(ctx, hs, func(context.Context) error {
				if down.Load() {
					return errors.New("no quorum")
				}
				return nil
			}, every, slog.New(slog.NewTextHandler(&logs, nil)))
		}()

		serving, notServing := healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
		for i, step := range []struct {
			down bool
			want healthpb.HealthCheckResponse_ServingStatus
		}{
			{false, serving},
			{true, notServing},
			{true, notServing},
			{false, serving},
			{false, serving},
		} {
			down.Store(step.down)
			time.Sleep(every)
			synctest.Wait()
			resp, err := hs.Check(ctx, &healthpb.HealthCheckRequest{Service: HealthLeases})
			if err != nil || resp.GetStatus() != step.want {
				t.Fatalf("step %d (down=%v): %v %v, want %v", i, step.down, resp.GetStatus(), err, step.want)
			}
		}
		cancel()
		<-stopped
		for msg, want := range map[string]int{"lease store unreachable": 1, "lease store reachable again": 1} {
			if n := strings.Count(logs.String(), msg); n != want {
				t.Errorf("%q logged %d times, want %d:\n%s", msg, n, want, logs.String())
			}
		}
	})
}
