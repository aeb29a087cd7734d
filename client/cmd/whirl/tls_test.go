package main

import (
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testcert"
	"github.com/whirl-dev/whirl/internal/testserver"
)

func TestTLSFlags(t *testing.T) {
	tc := testcert.SelfSigned(t, "whirl.test")
	caFile := tc.CertFile
	reg := lease.NewMemory(lease.Config{})
	t.Cleanup(func() { _ = reg.Close() })
	cert := tc.Pair
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
