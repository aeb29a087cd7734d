package service_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// rawCall sends one gRPC request over plain HTTP/2 and returns the response
// headers, the body and the trailers as the wire carried them, which a gRPC
// client library would merge.
func rawCall(t *testing.T, addr, method string, req proto.Message, md map[string]string) (http.Header, []byte, http.Header) {
	t.Helper()
	msg, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	hreq, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+method, bytes.NewReader(append(frame, msg...)))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("content-type", "application/grpc")
	hreq.Header.Set("te", "trailers")
	for k, v := range md {
		hreq.Header.Set(k, v)
	}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Transport{Protocols: &protocols}
	defer h2c.CloseIdleConnections()
	resp, err := h2c.RoundTrip(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header, body, resp.Trailer
}

// TestRefusalsAreTrailersOnly: every error, from a handler or an
// interceptor, unary or streaming, is one HEADERS frame that ends the stream
// (grpc-status among the response headers, no trailers after), so a gRPC
// client's retry policy may act on it; the request id travels with it. A
// successful call returns the id in its headers, before any message.
func TestRefusalsAreTrailersOnly(t *testing.T) {
	reg := lease.NewMemory(lease.Config{Capacity: 1})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{Leases: reg, AdminToken: adminToken})
	limited := testserver.Start(t, service.Config{Leases: reg, AcquireRate: 0.001, AcquireBurst: 1})
	api := whirlv1.NewAnimationServiceClient(testserver.Dial(t, srv.Addr))
	held, err := api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: "holder"})
	if err != nil {
		t.Fatal(err)
	}
	// Spend the limited server's only token; its pool is full anyway.
	rawCall(t, limited.Addr, whirlv1.AnimationService_AcquireLease_FullMethodName, &whirlv1.AcquireLeaseRequest{Holder: "raw"}, nil)

	oddVideo := smallVideo(1, 5)
	oddVideo.LeaseId = held.GetLeaseId()
	oddVideo.Video.Width = 161
	unknownLease := smallVideo(1, 5)
	unknownLease.LeaseId = "0123456789abcdef0123456789abcdef"
	render := smallVideo(1, 5)
	render.LeaseId = held.GetLeaseId()
	bearer := map[string]string{"authorization": "Bearer " + adminToken}
	for _, tc := range []struct {
		name, addr, method string
		req                proto.Message
		md                 map[string]string
		code               string // grpc-status; "0" is success
		pushback           bool
	}{
		{"pool full", srv.Addr, whirlv1.AnimationService_AcquireLease_FullMethodName, &whirlv1.AcquireLeaseRequest{Holder: "raw"}, nil, "8", true},
		{"rate limit interceptor", limited.Addr, whirlv1.AnimationService_AcquireLease_FullMethodName, &whirlv1.AcquireLeaseRequest{Holder: "raw"}, nil, "8", true},
		{"auth interceptor, no token", srv.Addr, whirlv1.LeaseAdminService_ListLeases_FullMethodName, &whirlv1.ListLeasesRequest{}, nil, "16", false},
		{"auth interceptor, wrong token", srv.Addr, whirlv1.LeaseAdminService_RevokeLease_FullMethodName, &whirlv1.RevokeLeaseRequest{}, map[string]string{"authorization": "Bearer nope"}, "16", false},
		{"unary handler", srv.Addr, whirlv1.AnimationService_RenewLease_FullMethodName, &whirlv1.RenewLeaseRequest{LeaseId: unknownLease.LeaseId}, nil, "5", false},
		{"stream, invalid", srv.Addr, whirlv1.AnimationService_RenderAnimation_FullMethodName, oddVideo, nil, "3", false},
		{"stream, unknown lease", srv.Addr, whirlv1.AnimationService_RenderAnimation_FullMethodName, unknownLease, nil, "5", false},
		{"unary success", srv.Addr, whirlv1.LeaseAdminService_ListLeases_FullMethodName, &whirlv1.ListLeasesRequest{}, bearer, "0", false},
		{"stream success", srv.Addr, whirlv1.AnimationService_RenderAnimation_FullMethodName, render, nil, "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{service.RequestIDHeader: "id-" + tc.code}
			for k, v := range tc.md {
				md[k] = v
			}
			header, body, trailer := rawCall(t, tc.addr, tc.method, tc.req, md)
			if tc.code == "0" {
				if header.Get(service.RequestIDHeader) != "id-0" || header.Get("grpc-status") != "" {
					t.Errorf("success: headers %v, want the request id and no status", header)
				}
				if trailer.Get("grpc-status") != "0" || len(body) == 0 {
					t.Errorf("success: trailers %v after %d bytes", trailer, len(body))
				}
				return
			}
			if header.Get("grpc-status") != tc.code || len(trailer) != 0 || len(body) != 0 {
				t.Fatalf("not trailers-only: headers %v, %d body bytes, trailers %v; want grpc-status %s in the only HEADERS frame",
					header, len(body), trailer, tc.code)
			}
			if header.Get(service.RequestIDHeader) != md[service.RequestIDHeader] {
				t.Errorf("request id %q, want %q", header.Get(service.RequestIDHeader), md[service.RequestIDHeader])
			}
			if got := header.Get("grpc-retry-pushback-ms") != ""; got != tc.pushback {
				t.Errorf("retry pushback present %v, want %v", got, tc.pushback)
			}
		})
	}
}
