//go:build !unix

package ffmpeg

import "os/exec"

func setProcAttr(*exec.Cmd) {}

// signalGroup does nothing: there are no process groups; Kill signals the
// child through its handle.
func signalGroup(int) {}
