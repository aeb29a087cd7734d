package encode

import (
	"context"
	"fmt"
	"time"

	"github.com/whirl-dev/whirl/internal/ffmpeg"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/i420"
)

// Errors Check wraps, for errors.Is.
var (
	ErrFFmpegNotFound = ffmpeg.ErrNotFound
	ErrNoLibx264      = ffmpeg.ErrNoEncoder
)

// Check verifies, at start-up, that ffmpegPath (empty: DefaultFFmpegPath)
// exists, runs, has the libx264 encoder and the mp4 muxer, and can produce a
// tiny fragmented MP4 with the options Start uses.
func Check(ctx context.Context, ffmpegPath string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	path, err := ffmpeg.LookPath(ffmpegPath)
	if err != nil {
		return err
	}
	if err := ffmpeg.Has(ctx, path, "libx264", "mp4"); err != nil {
		return err
	}
	// a real encode with the same arguments Start uses: 2 frames of 64×64
	var segs []fmp4.Segment
	e, err := Start(ctx, Options{FFmpegPath: path, Width: 64, Height: 64, FPS: 30, Frames: 2}, func(s fmp4.Segment) error {
		segs = append(segs, s)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ffmpeg at %s: trial encode: %w", path, err)
	}
	frame := make([]byte, i420.Size(64, 64))
	for range 2 {
		if err := e.WriteFrame(frame); err != nil {
			_ = e.Close()
			return fmt.Errorf("ffmpeg at %s: trial encode: %w", path, err)
		}
	}
	if err := e.Close(); err != nil {
		return fmt.Errorf("ffmpeg at %s: trial encode: %w", path, err)
	}
	if len(segs) < 2 || !segs[0].Init {
		return fmt.Errorf("ffmpeg at %s: trial encode gave %d segments", path, len(segs))
	}
	if _, err := fmp4.Codecs(segs[0].Data); err != nil {
		return fmt.Errorf("ffmpeg at %s: trial encode: %w", path, err)
	}
	return nil
}
