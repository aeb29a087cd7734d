package ffmpeg

import (
	"os/exec"

	"github.com/whirl-dev/whirl/internal/nice"
)

// startNiced starts cmd with its niceness raised by n, from its first
// instruction (see nice.Run).
func startNiced(cmd *exec.Cmd, n int) error { return nice.Run(n, cmd.Start) }
