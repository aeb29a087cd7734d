package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/whirl-dev/whirl/internal/clock"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
)

func TestTLSFlags(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "whirl.test"}, DNSNames: []string{"whirl.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := lease.NewMemory(lease.Config{}, clock.Real{})
	t.Cleanup(func() { _ = reg.Close() })
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	srv := testserver.Start(t, service.Config{Leases: reg, AdminToken: token}, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))

	r := whirl(t, admin(), "--server", srv.Addr, "--ca-file", caFile, "--server-name", "whirl.test", "leases").ok(t)
	if !strings.HasPrefix(r.stdout, "0 of 5 leases live") {
		t.Errorf("leases over TLS: %q", r.stdout)
	}
	r = whirl(t, nil, "--server", srv.Addr, "--tls", "--server-name", "whirl.test", "curve")
	if r.code != exitFailure || !strings.Contains(r.stderr, "certificate signed by unknown authority") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("unknown CA: exit %d, %q", r.code, r.stderr)
	}
	r = whirl(t, nil, "--server", srv.Addr, "curve")
	if r.code != exitFailure || !strings.Contains(r.stderr, "cannot reach server") {
		t.Errorf("plaintext to a TLS server: exit %d, %q", r.code, r.stderr)
	}
}
