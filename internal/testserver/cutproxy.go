package testserver

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// CutProxy forwards TCP connections to a server; the first connection's
// server-to-client direction is cut (both sides closed) after a number of
// bytes, as a network failure or a dying server would cut it. Later
// connections go through whole.
type CutProxy struct {
	lis      net.Listener
	target   string
	cutAfter int64
	conns    atomic.Int32
	wg       sync.WaitGroup
}

// StartCutProxy listens on a loopback port and forwards to target, cutting
// the first connection after cutAfter bytes from the server; it stops with
// the test.
func StartCutProxy(t testing.TB, target string, cutAfter int64) *CutProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{lis: lis, target: target, cutAfter: cutAfter}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		_ = lis.Close()
		p.wg.Wait()
	})
	return p
}

func (p *CutProxy) serve() {
	var open []net.Conn
	defer func() {
		for _, c := range open {
			_ = c.Close()
		}
	}()
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		open = append(open, in, out)
		limit := int64(-1)
		if p.conns.Add(1) == 1 {
			limit = p.cutAfter
		}
		p.wg.Go(func() { _, _ = io.Copy(out, in); _ = out.Close() })
		p.wg.Go(func() {
			if limit >= 0 {
				_, _ = io.CopyN(in, out, limit)
				_ = in.Close()
				_ = out.Close()
				return
			}
			_, _ = io.Copy(in, out)
			_ = in.Close()
		})
	}
}

// Addr is the proxy's address.
func (p *CutProxy) Addr() string { return p.lis.Addr().String() }

// Conns is the number of connections accepted so far.
func (p *CutProxy) Conns() int { return int(p.conns.Load()) }
