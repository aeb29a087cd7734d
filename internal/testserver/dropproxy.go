package testserver

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// ReplyDropProxy forwards TCP connections carrying gRPC (HTTP/2) to a
// server; on the first connection it cuts both directions as the server's
// reply to the first call begins (its first HEADERS frame on a stream), after
// the server has handled the call. The client sees the connection fail before
// any reply: a reply lost in the network. Later connections go through whole.
type ReplyDropProxy struct {
	lis     net.Listener
	target  string
	conns   atomic.Int32
	dropped atomic.Bool
	wg      sync.WaitGroup
}

// StartReplyDropProxy listens on a loopback port and forwards to target; it
// stops with the test.
func StartReplyDropProxy(t testing.TB, target string) *ReplyDropProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ReplyDropProxy{lis: lis, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		_ = lis.Close()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's address.
func (p *ReplyDropProxy) Addr() string { return p.lis.Addr().String() }

// Dropped reports whether a reply has been dropped.
func (p *ReplyDropProxy) Dropped() bool { return p.dropped.Load() }

func (p *ReplyDropProxy) serve() {
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
		first := p.conns.Add(1) == 1
		p.wg.Go(func() { _, _ = io.Copy(out, in); _ = out.Close() })
		p.wg.Go(func() {
			if first {
				p.forwardUntilReply(in, out)
				_ = in.Close()
				_ = out.Close()
				return
			}
			_, _ = io.Copy(in, out)
			_ = in.Close()
		})
	}
}

// forwardUntilReply copies HTTP/2 frames from the server until the first
// HEADERS frame on a stream (type 0x1, stream id > 0), which it drops.
func (p *ReplyDropProxy) forwardUntilReply(client io.Writer, server io.Reader) {
	var hdr [9]byte
	for {
		if _, err := io.ReadFull(server, hdr[:]); err != nil {
			return
		}
		length := int64(hdr[0])<<16 | int64(hdr[1])<<8 | int64(hdr[2])
		stream := binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff
		if hdr[3] == 0x1 && stream > 0 {
			p.dropped.Store(true)
			return
		}
		if _, err := client.Write(hdr[:]); err != nil {
			return
		}
		if _, err := io.CopyN(client, server, length); err != nil {
			return
		}
	}
}
