//go:build unix

package encode

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in a process group of its own, so that a
// terminal's Ctrl-C does not reach it behind the server's back and so that
// killTree also reaches anything it started (only fake ffmpegs in tests do).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killTree sends SIGKILL to the child and its process group. It must only be
// called before the child has been reaped.
func killTree(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = p.Kill()
}
