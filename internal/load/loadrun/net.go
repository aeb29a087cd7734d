package loadrun

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// isLoopback reports whether addr's host is an IPv4 loopback address or
// localhost.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.To4() != nil && ip.IsLoopback()
}

// sourceIP is connection i's source address: 127.1.0.1, 127.1.0.2, ...
// Linux routes all of 127.0.0.0/8 to the loopback device, so any of these
// can be bound without configuration.
func sourceIP(i int) net.IP {
	return net.IPv4(127, 1, byte(i/250), byte(i%250+1))
}

func dialFrom(ip net.IP) func(context.Context, string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp4", addr)
	}
}

// connectAll brings every connection to READY.
func connectAll(ctx context.Context, conns []*grpc.ClientConn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, c := range conns {
		c.Connect()
	}
	for _, c := range conns {
		for {
			s := c.GetState()
			if s == connectivity.Ready {
				break
			}
			if !c.WaitForStateChange(ctx, s) {
				return fmt.Errorf("connecting to %s: %s (%w)", c.Target(), s, ctx.Err())
			}
		}
	}
	return nil
}
