//go:build !linux

package encode

import "os/exec"

// startNiced starts cmd; niceness is applied on Linux only (see Options.Nice).
func startNiced(cmd *exec.Cmd, _ int) error { return cmd.Start() }
