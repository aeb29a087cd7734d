// Package testserver runs the real whirl gRPC server on a loopback port for
// tests, with the same interceptors, health and reflection as production.
package testserver

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/whirl-dev/whirl/internal/service"
)

// Server is a running test server.
type Server struct {
	*service.Server
	Addr string
}

// Start serves cfg on 127.0.0.1:0 until the test ends.
func Start(t testing.TB, cfg service.Config, extra ...grpc.ServerOption) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv := service.NewServer(cfg, extra...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.GRPC.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Shutdown(5 * time.Second)
		<-done
	})
	return &Server{Server: srv, Addr: lis.Addr().String()}
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
