package testserver

import (
	"net"
	"testing"
)

// NonLoopbackIP is an IPv4 address of this machine that is not loopback,
// for tests of what a client does toward a remote server; the test is
// skipped on a machine without one.
func NonLoopbackIP(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address to dial")
	return ""
}

// FreeAddr is a loopback address nothing listens on now: for a server a
// test starts on a port it must know first, or for a dial that must fail.
func FreeAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}
