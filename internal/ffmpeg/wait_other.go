//go:build !linux

package ffmpeg

// waitExited cannot wait without reaping here; Wait then marks the child
// reaped only after reaping it, and a Kill racing with that may still
// signal its group.
func waitExited(int) bool { return false }
