package client_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/testcert"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// authRecorder is a LeaseAdminService that remembers the authorization
// header of every call it receives.
type authRecorder struct {
	whirlv1.UnimplementedLeaseAdminServiceServer
	mu   sync.Mutex
	seen []string
}

func (a *authRecorder) ListLeases(ctx context.Context, _ *whirlv1.ListLeasesRequest) (*whirlv1.ListLeasesResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	a.mu.Lock()
	a.seen = append(a.seen, strings.Join(md.Get("authorization"), ","))
	a.mu.Unlock()
	return &whirlv1.ListLeasesResponse{Capacity: 5}, nil
}

func (a *authRecorder) calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

// serveAdmin serves rec on every interface, with TLS when cert is not nil,
// and returns the port.
func serveAdmin(t *testing.T, rec *authRecorder, cert *testcert.Cert) string {
	t.Helper()
	lis, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(&cert.Pair)))
	}
	s := grpc.NewServer(opts...)
	whirlv1.RegisterLeaseAdminServiceServer(s, rec)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(); <-done })
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	return port
}

// TestTokenNeverInPlaintextToRemote: the admin token goes over TLS or to a
// loopback address; plaintext to any other address needs WithInsecure, and
// without it the call fails before the token leaves the process.
func TestTokenNeverInPlaintextToRemote(t *testing.T) {
	remote := testserver.NonLoopbackIP(t)
	cert := testcert.SelfSigned(t, "whirl.test")
	plain, secure := &authRecorder{}, &authRecorder{}
	plainPort, securePort := serveAdmin(t, plain, nil), serveAdmin(t, secure, &cert)

	tests := []struct {
		name    string
		rec     *authRecorder
		addr    string
		opts    []client.Option
		refused bool
	}{
		{"plaintext to a remote address", plain, net.JoinHostPort(remote, plainPort), nil, true},
		{"plaintext to a remote address, allowed", plain, net.JoinHostPort(remote, plainPort), []client.Option{client.WithInsecure()}, false},
		{"plaintext to 127.0.0.1", plain, net.JoinHostPort("127.0.0.1", plainPort), nil, false},
		{"plaintext to localhost", plain, net.JoinHostPort("localhost", plainPort), nil, false},
		{"TLS to a remote address", secure, net.JoinHostPort(remote, securePort), []client.Option{client.WithCAFile(cert.CertFile), client.WithServerName("whirl.test")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.rec.calls())
			c := dial(t, tt.addr, append(tt.opts, client.WithToken("s3cret"))...)
			_, err := c.ListLeases(context.Background())
			after := tt.rec.calls()[before:]
			if tt.refused {
				if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "admin token not sent") || !strings.Contains(err.Error(), "WithInsecure") {
					t.Fatalf("ListLeases: %v; want UNAUTHENTICATED saying the token was not sent", err)
				}
				if len(after) != 0 {
					t.Fatalf("the server received %d calls, carrying %q", len(after), after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != 1 || after[0] != "Bearer s3cret" {
				t.Errorf("server saw authorization %q, want one call with the token", after)
			}
		})
	}
}

// TestDialKeepsProxySupport: with HTTPS_PROXY set, Dial goes through the
// proxy (grpc-go's own dialer), which a custom dialer would bypass. net/http
// reads the proxy variables once per process, so the check runs in a fresh
// copy of this test binary.
func TestDialKeepsProxySupport(t *testing.T) {
	if os.Getenv("WHIRL_TEST_PROXY_CHILD") == "" {
		remote := testserver.NonLoopbackIP(t)
		cmd := exec.Command(os.Args[0], "-test.run=^TestDialKeepsProxySupport$", "-test.v")
		cmd.Env = append(os.Environ(), "WHIRL_TEST_PROXY_CHILD="+remote)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestDialKeepsProxySupport") {
			t.Fatalf("in a fresh process: %v\n%s", err, out)
		}
		return
	}
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	connected := make(chan string, 1)
	go func() {
		conn, err := proxy.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 512)
		n, _ := conn.Read(buf)
		connected <- string(buf[:n])
	}()
	t.Setenv("HTTPS_PROXY", "http://"+proxy.Addr().String())
	t.Setenv("NO_PROXY", "")
	target := net.JoinHostPort(os.Getenv("WHIRL_TEST_PROXY_CHILD"), "1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := client.Dial(ctx, target); err == nil {
		c.Close()
		t.Fatal("Dial through a proxy that never answers succeeded")
	}
	select {
	case req := <-connected:
		if !strings.HasPrefix(req, "CONNECT "+target) {
			t.Errorf("the proxy received %q, want a CONNECT to %s", req, target)
		}
	case <-ctx.Done():
		t.Fatal("Dial did not go through HTTPS_PROXY")
	}
}
