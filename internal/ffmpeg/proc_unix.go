//go:build unix

package ffmpeg

import (
	"os/exec"
	"syscall"
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
