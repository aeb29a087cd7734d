package main_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
