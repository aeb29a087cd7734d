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
// connections go through whole. Sever cuts every connection at once and
// refuses new ones until Heal, as a network partition would.
type CutProxy struct {
	lis    net.Listener
	target string
	// firstDown carries the first connection's server-to-client direction
	// until it returns; then both sides are closed.
	firstDown func(client io.Writer, server io.Reader)
	conns     atomic.Int32
	dropped   atomic.Bool
	wg        sync.WaitGroup

	mu      sync.Mutex
	severed bool
	open    map[net.Conn]struct{}
}

// StartCutProxy listens on a loopback port and forwards to target, cutting
// the first connection after cutAfter bytes from the server; it stops with
// the test. A negative cutAfter cuts nothing.
func StartCutProxy(t testing.TB, target string, cutAfter int64) *CutProxy {
	t.Helper()
	var first func(io.Writer, io.Reader)
	if cutAfter >= 0 {
		first = func(client io.Writer, server io.Reader) { _, _ = io.CopyN(client, server, cutAfter) }
	}
	return startProxy(t, target, first)
}

func startProxy(t testing.TB, target string, firstDown func(client io.Writer, server io.Reader)) *CutProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{lis: lis, target: target, firstDown: firstDown, open: make(map[net.Conn]struct{})}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		_ = lis.Close()
		p.wg.Wait()
	})
	return p
}

func (p *CutProxy) serve() {
	defer p.Sever()
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
		if !p.track(in, out) {
			continue
		}
		var first func(io.Writer, io.Reader)
		if p.conns.Add(1) == 1 {
			first = p.firstDown
		}
		p.wg.Go(func() { _, _ = io.Copy(out, in); _ = out.Close() })
		p.wg.Go(func() {
			defer p.untrack(in, out)
			if first != nil {
				first(in, out)
				_ = in.Close()
				_ = out.Close()
				return
			}
			_, _ = io.Copy(in, out)
			_ = in.Close()
		})
	}
}

// track remembers a connection's two sides for Sever, or closes them if
// the proxy is severed.
func (p *CutProxy) track(in, out net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.severed {
		_ = in.Close()
		_ = out.Close()
		return false
	}
	p.open[in], p.open[out] = struct{}{}, struct{}{}
	return true
}

// untrack forgets a connection whose server side has ended.
func (p *CutProxy) untrack(in, out net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.open, in)
	delete(p.open, out)
}

// Sever closes every connection through the proxy and refuses new ones
// (accepted, then closed at once) until Heal.
func (p *CutProxy) Sever() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.severed = true
	for c := range p.open {
		_ = c.Close()
	}
	clear(p.open)
}

// Heal lets new connections through again after Sever.
func (p *CutProxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.severed = false
}

// Addr is the proxy's address.
func (p *CutProxy) Addr() string { return p.lis.Addr().String() }

// Conns is the number of connections accepted so far.
func (p *CutProxy) Conns() int { return int(p.conns.Load()) }
