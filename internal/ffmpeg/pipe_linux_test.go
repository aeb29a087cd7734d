package ffmpeg

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestStdinBuffer: the stdin pipe is as big as the command asks, so a
// caller hands over a whole frame in a single write.
func TestStdinBuffer(t *testing.T) {
	const want = 720 * 720 * 3 / 2 // a 720×720 I420 frame
	p, err := Start(Command{Path: "cat", StdinBuffer: want})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	raw, err := p.stdin.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var ferr error
	if err := raw.Control(func(fd uintptr) { size, ferr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	if size < want {
		t.Errorf("stdin pipe holds %d bytes, asked for %d", size, want)
	}
}
