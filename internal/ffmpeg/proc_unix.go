//go:build unix

package ffmpeg

import (
	"errors"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// setProcAttr puts the child in a process group of its own, so that a
// terminal's Ctrl-C does not reach it behind the server's back and so that
// Kill also reaches anything it started (only fake ffmpegs in tests do).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends SIGKILL to the process group pgid. It must only be
// called while the group's leader has not been reaped.
func signalGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

// waitExited blocks until the child pid has exited, without reaping it
// (WNOWAIT): until it is reaped its pid, and so its group id, cannot be
// handed to another process.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return // exited, or not ours to wait for: cmd.Wait says which
		}
	}
}
