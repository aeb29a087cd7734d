package encode

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/whirl-dev/whirl/internal/i420"
)

// TestStdinPipeHoldsAFrame: ffmpeg's stdin pipe holds a whole frame, so
// the renderer hands one over in a single write.
func TestStdinPipeHoldsAFrame(t *testing.T) {
	o, err := Options{Width: 720, Height: 720, FPS: 30}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p, err := startProcess(o)
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
	if want := i420.Size(o.Width, o.Height); size < want {
		t.Errorf("stdin pipe holds %d bytes, a frame is %d", size, want)
	}
}
