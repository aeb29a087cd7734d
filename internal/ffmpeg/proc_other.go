//go:build !unix

package ffmpeg

import "os/exec"

func setProcAttr(*exec.Cmd) {}

// signalGroup does nothing: there are no process groups; Kill signals the
// child through its handle.
func signalGroup(int) {}

// waitExited does nothing: Kill signals only through the process handle.
func waitExited(int) {}
