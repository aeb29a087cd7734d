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
