package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testcert"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

func TestDialUnreachable(t *testing.T) {
	addr := testserver.FreeAddr(t)
	start := time.Now()
	c, err := client.Dial(context.Background(), addr)
	if c != nil || !errors.Is(err, client.ErrUnreachable) || status.Code(err) != codes.Unavailable {
		t.Fatalf("Dial(%s): %v, %v", addr, c, err)
	}
	if want := "whirl: cannot reach server at " + addr + ": connection refused"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Dial took %s to fail", d)
	}

	// Lazy: Dial succeeds, the first call fails with UNAVAILABLE.
	c, err = client.Dial(context.Background(), addr, client.WithLazyConnect())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GenerateCurve(context.Background(), &whirlv1.GenerateCurveRequest{Seed: 1}); status.Code(err) != codes.Unavailable {
		t.Errorf("call on a lazy client to a closed port: %v", err)
	}
}

func TestDialTimeoutOnSilentServer(t *testing.T) {
	// A listener that accepts and never speaks: the handshake never ends.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { <-done; conn.Close() }()
		}
	}()
	start := time.Now()
	_, err = client.Dial(context.Background(), lis.Addr().String(), client.WithTimeout(300*time.Millisecond))
	if !errors.Is(err, client.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a silent server: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Dial took %s with a 300ms timeout", d)
	}
}

func TestDialTLS(t *testing.T) {
	tc := testcert.SelfSigned(t, "whirl.test")
	cert, caFile := tc.Pair, tc.CertFile
	srv := startServer(t, service.Config{}, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	ctx := context.Background()

	c := dial(t, srv.Addr, client.WithCAFile(caFile), client.WithServerName("whirl.test"))
	if _, err := c.GenerateCurve(ctx, &whirlv1.GenerateCurveRequest{Seed: 1}); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	if _, err := c.ListLeases(ctx); err != nil {
		t.Fatalf("admin over TLS: %v", err)
	}

	pool := tc.Pool()
	c = dial(t, srv.Addr, client.WithTLS(&tls.Config{RootCAs: pool, ServerName: "whirl.test", MinVersion: tls.VersionTLS12}))
	if _, err := c.GenerateCurve(ctx, &whirlv1.GenerateCurveRequest{Seed: 1}); err != nil {
		t.Fatalf("over TLS with a tls.Config: %v", err)
	}

	tests := []struct {
		name string
		opts []client.Option
		want string
	}{
		{"unknown CA", []client.Option{client.WithTLS(nil), client.WithServerName("whirl.test")}, "certificate signed by unknown authority"},
		{"wrong name", []client.Option{client.WithCAFile(caFile)}, "doesn't contain any IP SANs"},
		{"plaintext to TLS", nil, "with the same TLS setting?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.Dial(ctx, srv.Addr, append(tt.opts, client.WithTimeout(5*time.Second))...)
			if !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Dial: %v; want ErrUnreachable mentioning %q", err, tt.want)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}

	if _, err := client.Dial(ctx, srv.Addr, client.WithCAFile(filepath.Join(t.TempDir(), "missing.pem"))); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("missing CA file: %v", err)
	}
	if _, err := client.Dial(ctx, srv.Addr, client.WithTLS(nil), client.WithInsecure()); err == nil {
		t.Error("TLS and insecure together: no error")
	}
}

func TestNewWrapsConnection(t *testing.T) {
	srv := startServer(t, service.Config{})
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecureCreds()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := client.New(conn, client.WithToken(adminToken))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListLeases(context.Background()); err != nil {
		t.Fatalf("after Close, on the caller's connection: %v", err)
	}
}
