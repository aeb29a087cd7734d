package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// selfSigned writes a self-signed certificate valid for 127.0.0.1 and
// returns the paths of its PEM certificate and key, and the parsed pair.
func selfSigned(t *testing.T, dir, name string) (certPath, keyPath string, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath, pair
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	serverCert, serverKey, serverPair := selfSigned(t, dir, "server")
	clientCA, _, clientPair := selfSigned(t, dir, "client")
	roots := x509.NewCertPool()
	roots.AddCert(mustLeaf(t, serverPair))

	plainTLS := startServer(t, "--tls-cert", serverCert, "--tls-key", serverKey)
	mutual := startServer(t, "--tls-cert", serverCert, "--tls-key", serverKey, "--tls-client-ca", clientCA)

	tests := []struct {
		name   string
		addr   string
		creds  credentials.TransportCredentials
		wantOK bool
	}{
		{"TLS client", plainTLS.addr, credentials.NewTLS(&tls.Config{RootCAs: roots}), true},
		{"plaintext client to TLS server", plainTLS.addr, insecure.NewCredentials(), false},
		{"client not trusting the server", plainTLS.addr, credentials.NewTLS(&tls.Config{RootCAs: x509.NewCertPool()}), false},
		{"mutual TLS with client certificate", mutual.addr, credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientPair}}), true},
		{"mutual TLS without client certificate", mutual.addr, credentials.NewTLS(&tls.Config{RootCAs: roots}), false},
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

func mustLeaf(t *testing.T, pair tls.Certificate) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
