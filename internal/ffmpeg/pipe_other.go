//go:build !linux

package ffmpeg

import "os"

// growPipe does nothing where the pipe's size cannot be set.
func growPipe(*os.File, int) {}
