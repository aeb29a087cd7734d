package testserver

import (
	"encoding/binary"
	"io"
	"testing"
)

// StartReplyDropProxy starts a CutProxy for gRPC (HTTP/2) whose first
// connection is cut, both ways, as the server's reply to the first call
// begins (its first HEADERS frame on a stream), after the server has
// handled the call: the client sees the connection fail before any reply,
// a reply lost in the network. Later connections go through whole; Dropped
// reports whether a reply was dropped.
func StartReplyDropProxy(t testing.TB, target string) *CutProxy {
	t.Helper()
	var p *CutProxy
	p = startProxy(t, target, func(client io.Writer, server io.Reader) {
		if forwardUntilReply(client, server) {
			p.dropped.Store(true)
		}
	})
	return p
}

// Dropped reports whether a proxy from StartReplyDropProxy has dropped a
// reply.
func (p *CutProxy) Dropped() bool { return p.dropped.Load() }

// forwardUntilReply copies HTTP/2 frames from the server until the first
// HEADERS frame on a stream (type 0x1, stream id > 0), which it drops,
// reporting true.
func forwardUntilReply(client io.Writer, server io.Reader) bool {
	var hdr [9]byte
	for {
		if _, err := io.ReadFull(server, hdr[:]); err != nil {
			return false
		}
		length := int64(hdr[0])<<16 | int64(hdr[1])<<8 | int64(hdr[2])
		stream := binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff
		if hdr[3] == 0x1 && stream > 0 {
			return true
		}
		if _, err := client.Write(hdr[:]); err != nil {
			return false
		}
		if _, err := io.CopyN(client, server, length); err != nil {
			return false
		}
	}
}
