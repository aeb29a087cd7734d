package ffmpeg

import (
	"os"

	"golang.org/x/sys/unix"
)

// growPipe asks the kernel for a pipe buffer of at least n bytes (Linux
// caps it at /proc/sys/fs/pipe-max-size, 1 MiB by default). A buffer that
// holds a whole frame lets the renderer hand ffmpeg a frame in one write
// and go on drawing the next while ffmpeg reads it, instead of the two
// taking turns through the default 64 KiB, a switch every 16 pages. It
// changes no byte; if the kernel refuses, the pipe keeps its size.
func growPipe(f *os.File, n int) {
	// Control rather than Fd: Fd would put the pipe in blocking mode
	if raw, err := f.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, n) })
	}
}
