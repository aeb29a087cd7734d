package main_test

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// SIGTERM covers the HTTP listener too: a Connect stream under way when the
// signal comes runs to its trailer within the grace, new connections are
// refused, and the server exits cleanly once the stream is done.
func TestHTTPListenerGracefulShutdown(t *testing.T) {
	p := startServer(t, "--shutdown-grace", "60s")
	c, err := client.Dial(t.Context(), p.addr, client.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := c.Acquire(t.Context(), client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + p.httpAddr
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rc := connect.NewClient[whirlv1.RenderAnimationRequest, whirlv1.RenderAnimationResponse](&http.Client{Transport: tr},
		base+whirlv1.AnimationService_RenderAnimation_FullMethodName)
	stream, err := rc.CallServerStream(t.Context(), connect.NewRequest(&whirlv1.RenderAnimationRequest{
		LeaseId: l.ID,
		Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 11}},
		Video:   &whirlv1.VideoOptions{Width: 320, Height: 320, Frames: 600},
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	v := client.NewStreamVerifier(io.Discard)
	signalled := false
	for stream.Receive() {
		if err := v.Event(stream.Msg()); err != nil {
			t.Fatal(err)
		}
		if !signalled && v.Segments() >= 2 { // the first media fragment is in: signal mid-stream
			if err := p.srv.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			signalled = true
			waitRefused(t, base)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream cut after SIGTERM: %v", err)
	}
	if err := v.End(); err != nil || !signalled {
		t.Fatalf("stream end: %v (signalled mid-stream: %v)", err, signalled)
	}
	select {
	case err := <-p.done:
		p.done <- err // for startServer's cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("server still running after its last stream; logs:\n%s", p.logs)
	}
}

// waitRefused waits until the HTTP listener refuses new connections.
func waitRefused(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr := &http.Transport{DisableKeepAlives: true}
		res, err := (&http.Client{Transport: tr}).Get(base + "/")
		if err == nil {
			res.Body.Close()
		}
		tr.CloseIdleConnections()
		if err != nil && strings.Contains(err.Error(), "refused") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTP listener still accepting 10 s after SIGTERM (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
