package browser_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/whirl-dev/whirl/client/web"
	"github.com/whirl-dev/whirl/internal/browser"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const allowedOrigin = "https://app.example.com"

// env is a real whirl gRPC server with the browser listener in front of it,
// both on loopback.
type env struct {
	base   string // http://127.0.0.1:port
	native whirlv1.AnimationServiceClient
}

func start(t *testing.T, capacity int) env {
	t.Helper()
	reg := lease.NewMemory(lease.Config{Capacity: capacity})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{Leases: reg, AdminToken: "ops"})
	h, err := browser.NewHandler(srv.GRPCServer(), browser.Options{Page: web.Handler(), CORSOrigins: []string{allowedOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := browser.NewServer(h, nil)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return env{base: "http://" + lis.Addr().String(), native: whirlv1.NewAnimationServiceClient(testserver.Dial(t, srv.Addr))}
}

// protocol is one way a client reaches the HTTP listener.
type protocol struct {
	name string
	h2c  bool
	opts []connect.ClientOption
}

var protocols = []protocol{
	{"connect proto over HTTP/1.1", false, nil},
	{"connect JSON over HTTP/1.1", false, []connect.ClientOption{connect.WithProtoJSON()}},
	{"connect proto over h2c", true, nil},
	{"gRPC-Web over HTTP/1.1", false, []connect.ClientOption{connect.WithGRPCWeb()}},
	{"gRPC-Web over h2c", true, []connect.ClientOption{connect.WithGRPCWeb()}},
	{"gRPC over h2c", true, []connect.ClientOption{connect.WithGRPC()}},
}

func (p protocol) client(t *testing.T) *http.Client {
	var ps http.Protocols
	if p.h2c {
		ps.SetUnencryptedHTTP2(true)
	} else {
		ps.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &ps}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func call[Req, Res any](t *testing.T, e env, p protocol, method string, req *Req, extra ...connect.ClientOption) (*connect.Response[Res], error) {
	t.Helper()
	c := connect.NewClient[Req, Res](p.client(t), e.base+method, append(p.opts, extra...)...)
	return c.CallUnary(t.Context(), connect.NewRequest(req))
}

// Every protocol reaches the same handlers: the answers equal the native
// gRPC ones, and the server's interceptors ran (request id, admin auth).
func TestProtocolsReachTheSameHandlers(t *testing.T) {
	e := start(t, 5)
	want, err := e.native.GenerateCurve(t.Context(), &whirlv1.GenerateCurveRequest{Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			res, err := call[whirlv1.GenerateCurveRequest, whirlv1.Curve](t, e, p, whirlv1.AnimationService_GenerateCurve_FullMethodName, &whirlv1.GenerateCurveRequest{Seed: 42})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(res.Msg, want) {
				t.Errorf("curve differs from the native gRPC answer")
			}
			if res.Header().Get("x-request-id") == "" {
				t.Errorf("no x-request-id header: the request-id interceptor did not run")
			}
			_, err = call[whirlv1.ListLeasesRequest, whirlv1.ListLeasesResponse](t, e, p, whirlv1.LeaseAdminService_ListLeases_FullMethodName, &whirlv1.ListLeasesRequest{})
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("admin call without a token: %v, want unauthenticated", err)
			}
			_, err = call[whirlv1.GenerateCurveRequest, whirlv1.Curve](t, e, p, whirlv1.AnimationService_GenerateCurve_FullMethodName, &whirlv1.GenerateCurveRequest{Wheels: 99})
			if connect.CodeOf(err) != connect.CodeInvalidArgument || len(details[*errdetails.BadRequest](t, err)) == 0 {
				t.Errorf("bad request: %v, want invalid_argument with BadRequest", err)
			}
		})
	}
}

// details decodes the typed error details of type T an error carries.
func details[T proto.Message](t *testing.T, err error) []T {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	var out []T
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			t.Fatal(derr)
		}
		if m, ok := v.(T); ok {
			out = append(out, m)
		}
	}
	return out
}

// A full pool refuses browser-protocol callers as it refuses gRPC ones:
// RESOURCE_EXHAUSTED with RetryInfo, QuotaFailure and the ErrorInfo
// naming the reason.
func TestRefusalCarriesRetryInfo(t *testing.T) {
	e := start(t, 1)
	if _, err := e.native.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: "first"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			_, err := call[whirlv1.AcquireLeaseRequest, whirlv1.Lease](t, e, p, whirlv1.AnimationService_AcquireLease_FullMethodName, &whirlv1.AcquireLeaseRequest{Holder: "second"})
			if connect.CodeOf(err) != connect.CodeResourceExhausted {
				t.Fatalf("err %v, want resource_exhausted", err)
			}
			ri := details[*errdetails.RetryInfo](t, err)
			if len(ri) != 1 || ri[0].GetRetryDelay().AsDuration() <= 0 || ri[0].GetRetryDelay().AsDuration() > 5*time.Second {
				t.Errorf("RetryInfo %v, want one with a delay in (0, 5s]", ri)
			}
			if qf := details[*errdetails.QuotaFailure](t, err); len(qf) != 1 || qf[0].GetViolations()[0].GetSubject() != "leases" {
				t.Errorf("QuotaFailure %v, want subject leases", qf)
			}
			if ei := details[*errdetails.ErrorInfo](t, err); len(ei) != 1 || ei[0].GetReason() != whirlv1.ErrorReason_LEASE_CAPACITY.String() || ei[0].GetDomain() != "whirl.v1" {
				t.Errorf("ErrorInfo %v, want one with reason LEASE_CAPACITY in whirl.v1", ei)
			}
		})
	}
}

// RenderAnimation streams through every protocol; the bytes match the
// trailer as they do over native gRPC.
func TestRenderStreams(t *testing.T) {
	e := start(t, 5)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			l, err := e.native.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: t.Name()})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				_, _ = e.native.ReleaseLease(context.Background(), &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()})
			}()
			c := connect.NewClient[whirlv1.RenderAnimationRequest, whirlv1.RenderAnimationResponse](p.client(t), e.base+whirlv1.AnimationService_RenderAnimation_FullMethodName, p.opts...)
			stream, err := c.CallServerStream(t.Context(), connect.NewRequest(&whirlv1.RenderAnimationRequest{
				LeaseId: l.GetLeaseId(),
				Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 3}},
				Video:   &whirlv1.VideoOptions{Width: 96, Height: 96, Frames: 12},
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Close()
			var file bytes.Buffer
			var header *whirlv1.RenderHeader
			var trailer *whirlv1.RenderTrailer
			for stream.Receive() {
				switch ev := stream.Msg().GetEvent().(type) {
				case *whirlv1.RenderAnimationResponse_Header:
					header = ev.Header
				case *whirlv1.RenderAnimationResponse_Chunk:
					file.Write(ev.Chunk.GetData())
				case *whirlv1.RenderAnimationResponse_Trailer:
					trailer = ev.Trailer
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if header == nil || !strings.HasPrefix(header.GetMimeType(), `video/mp4; codecs="avc1.`) {
				t.Fatalf("header %v, want an MSE MIME type", header)
			}
			sum := sha256.Sum256(file.Bytes())
			if trailer == nil || hex.EncodeToString(sum[:]) != trailer.GetSha256() || int64(file.Len()) != trailer.GetTotalBytes() {
				t.Fatalf("trailer %v does not match the %d bytes received", trailer, file.Len())
			}
		})
	}
}

// The page is served at "/" with its assets; RPC paths are not the page's.
func TestPage(t *testing.T) {
	e := start(t, 5)
	tests := []struct {
		path, contentType, contains string
		status                      int
	}{
		{"/", "text/html", "<title>whirl</title>", http.StatusOK},
		{"/app.js", "text/javascript", "MediaSource", http.StatusOK},
		{"/style.css", "text/css", "--pen", http.StatusOK},
		{"/nothing-here", "", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res, err := http.Get(e.base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status || !strings.HasPrefix(res.Header.Get("Content-Type"), tt.contentType) || !bytes.Contains(body, []byte(tt.contains)) {
				t.Errorf("%s: %d %q (%d bytes), want %d %q containing %q", tt.path, res.StatusCode, res.Header.Get("Content-Type"), len(body), tt.status, tt.contentType, tt.contains)
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("%s: Content-Security-Policy %q", tt.path, csp)
			}
		})
	}
}

// CORS: listed origins get the preflight answer and readable responses with
// the Connect and gRPC-Web headers; others get no CORS headers at all.
func TestCORS(t *testing.T) {
	e := start(t, 5)
	tests := []struct {
		name, origin, method string
		wantAllow            bool
	}{
		{"preflight from a listed origin", allowedOrigin, http.MethodOptions, true},
		{"call from a listed origin", allowedOrigin, http.MethodPost, true},
		{"preflight from another origin", "https://evil.example", http.MethodOptions, false},
		{"call from another origin", "https://evil.example", http.MethodPost, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, e.base+whirlv1.AnimationService_GenerateCurve_FullMethodName, strings.NewReader(`{"seed":1}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", tt.origin)
			if tt.method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "content-type,connect-protocol-version")
			} else {
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Connect-Protocol-Version", "1")
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			allow := res.Header.Get("Access-Control-Allow-Origin")
			if (allow == tt.origin) != tt.wantAllow {
				t.Fatalf("Access-Control-Allow-Origin %q, want allowed=%v", allow, tt.wantAllow)
			}
			switch {
			case !tt.wantAllow:
			case tt.method == http.MethodOptions:
				h := strings.ToLower(res.Header.Get("Access-Control-Allow-Headers"))
				if res.StatusCode != http.StatusNoContent || !strings.Contains(h, "connect-protocol-version") || !strings.Contains(h, "x-grpc-web") {
					t.Errorf("preflight %d, allow-headers %q", res.StatusCode, h)
				}
			default:
				if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "Grpc-Status") {
					t.Errorf("call %d, expose-headers %q", res.StatusCode, res.Header.Get("Access-Control-Expose-Headers"))
				}
			}
		})
	}
}
