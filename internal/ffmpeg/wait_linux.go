package ffmpeg

import (
	"errors"

	"golang.org/x/sys/unix"
)

// waitExited blocks until the child pid has exited, without reaping it
// (WNOWAIT): until it is reaped its pid, and so its group id, cannot be
// handed to another process. It reports whether it waited.
func waitExited(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err == nil
		}
	}
}
