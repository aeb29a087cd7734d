package main_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/whirl-dev/whirl/internal/testcert"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

func TestTLS(t *testing.T) {
	server, client := testcert.SelfSigned(t, "server"), testcert.SelfSigned(t, "client")
	serverCert, serverKey, clientCA, clientPair, roots := server.CertFile, server.KeyFile, client.CertFile, client.Pair, server.Pool()

	plainTLS := startServer(t, "--tls-cert", serverCert, "--tls-key", serverKey)
	mutual := startServer(t, "--tls-cert", serverCert, "--tls-key", serverKey, "--tls-client-ca", clientCA)

	tests := []struct {
		name   string
		addr   string
		creds  credentials.TransportCredentials
		wantOK bool
	}{
		{"TLS client", plainTLS.addr, credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "server"}), true},
		{"plaintext client to TLS server", plainTLS.addr, insecure.NewCredentials(), false},
		{"client not trusting the server", plainTLS.addr, credentials.NewTLS(&tls.Config{RootCAs: x509.NewCertPool(), ServerName: "server"}), false},
		{"mutual TLS with client certificate", mutual.addr, credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "server", Certificates: []tls.Certificate{clientPair}}), true},
		{"mutual TLS without client certificate", mutual.addr, credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "server"}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := grpc.NewClient(tt.addr, grpc.WithTransportCredentials(tt.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = whirlv1.NewAnimationServiceClient(conn).GenerateCurve(ctx, &whirlv1.GenerateCurveRequest{Seed: 1})
			if (err == nil) != tt.wantOK {
				t.Fatalf("GenerateCurve: %v, want ok=%v", err, tt.wantOK)
			}
		})
	}
}

// The TLS flags cover the HTTP listener too: HTTPS with HTTP/2 or
// HTTP/1.1, the same mutual-TLS rule, and nothing in plaintext.
func TestTLSHTTPListener(t *testing.T) {
	server, client := testcert.SelfSigned(t, "server"), testcert.SelfSigned(t, "client")
	plainTLS := startServer(t, "--tls-cert", server.CertFile, "--tls-key", server.KeyFile)
	mutual := startServer(t, "--tls-cert", server.CertFile, "--tls-key", server.KeyFile, "--tls-client-ca", client.CertFile)
	trusting := &tls.Config{RootCAs: server.Pool(), ServerName: "server"}
	withCert := &tls.Config{RootCAs: server.Pool(), ServerName: "server", Certificates: []tls.Certificate{client.Pair}}

	tests := []struct {
		name      string
		url       string
		tc        *tls.Config
		http2     bool
		wantProto string // "" = the request must fail
	}{
		{"HTTPS, HTTP/2", "https://" + plainTLS.httpAddr, trusting, true, "HTTP/2.0"},
		{"HTTPS, HTTP/1.1", "https://" + plainTLS.httpAddr, trusting, false, "HTTP/1.1"},
		{"plaintext to the TLS listener", "http://" + plainTLS.httpAddr, nil, false, ""},
		{"mutual TLS with client certificate", "https://" + mutual.httpAddr, withCert, true, "HTTP/2.0"},
		{"mutual TLS without client certificate", "https://" + mutual.httpAddr, trusting, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p http.Protocols
			p.SetHTTP1(!tt.http2)
			p.SetHTTP2(tt.http2)
			// A transport writes its ALPN protocols into its TLS config: one each.
			tr := &http.Transport{TLSClientConfig: tt.tc.Clone(), Protocols: &p}
			defer tr.CloseIdleConnections()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.url+"/whirl.v1.AnimationService/GenerateCurve", strings.NewReader(`{"seed":1}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Connect-Protocol-Version", "1")
			res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
			if tt.wantProto == "" {
				if err == nil {
					res.Body.Close()
					if res.StatusCode == http.StatusOK {
						t.Fatalf("request succeeded (%s), want a failure", res.Proto)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK || res.Proto != tt.wantProto {
				t.Fatalf("%d over %s, want 200 over %s", res.StatusCode, res.Proto, tt.wantProto)
			}
		})
	}
}
