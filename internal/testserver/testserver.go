// Package testserver runs the real whirl gRPC server on a loopback port for
// tests and benchmarks, with the same interceptors, health and reflection as
// production.
package testserver

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/whirl-dev/whirl/internal/service"
)

// DefaultShutdownGrace is the grace Stop gives running calls when the
// Config sets none.
const DefaultShutdownGrace = 5 * time.Second

// Server is a running test server.
type Server struct {
	*service.Server
	Addr   string
	cancel context.CancelFunc
	served chan struct{}
}

// Start serves cfg on 127.0.0.1:0 until the test ends.
func Start(t testing.TB, cfg service.Config, extra ...grpc.ServerOption) *Server {
	t.Helper()
	s, err := Serve(cfg, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Serve serves cfg on 127.0.0.1:0 until Stop, for callers without a
// testing.TB: a TestMain, or a benchmark command. A zero
// cfg.ShutdownGrace becomes DefaultShutdownGrace, and a nil cfg.Logger
// discards.
func Serve(cfg service.Config, extra ...grpc.ServerOption) (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Server: service.NewServer(cfg, extra...), Addr: lis.Addr().String(), cancel: cancel, served: make(chan struct{})}
	go func() {
		defer close(s.served)
		_ = s.Server.Serve(ctx, lis)
	}()
	return s, nil
}

// Stop shuts the server down and waits until it has stopped. It may be
// called more than once.
func (s *Server) Stop() {
	s.cancel()
	<-s.served
}

// Dial opens a plaintext client connection that closes when the test ends.
func Dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
