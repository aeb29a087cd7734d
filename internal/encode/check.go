package encode

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/whirl-dev/whirl/internal/i420"
)

// Errors Check wraps, for errors.Is.
var (
	ErrFFmpegNotFound = errors.New("ffmpeg not found")
	ErrNoLibx264      = errors.New("ffmpeg has no libx264 encoder")
)

const installHint = "install it with `apt-get install -y ffmpeg`"

func notFound(path string, err error) error {
	return fmt.Errorf("%w at %s: %s (%v)", ErrFFmpegNotFound, path, installHint, err)
}

// Check verifies, at start-up, that ffmpegPath (empty: DefaultFFmpegPath)
// exists, runs, has the libx264 encoder and the mp4 muxer, and can produce a
// tiny fragmented MP4 with the options Start uses.
func Check(ctx context.Context, ffmpegPath string) error {
	if ffmpegPath == "" {
		ffmpegPath = DefaultFFmpegPath
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	path, err := exec.LookPath(ffmpegPath)
	if err != nil {
		return notFound(ffmpegPath, err)
	}
	run := func(arg ...string) (string, error) { return output(ctx, path, arg...) }
	if _, err := run("-hide_banner", "-version"); err != nil {
		return err
	}
	encoders, err := run("-hide_banner", "-encoders")
	if err != nil {
		return err
	}
	if !hasEntry(encoders, "libx264") {
		return fmt.Errorf("%w at %s: install a build with libx264 (Debian's: `apt-get install -y ffmpeg`)", ErrNoLibx264, path)
	}
	muxers, err := run("-hide_banner", "-muxers")
	if err != nil {
		return err
	}
	if !hasEntry(muxers, "mp4") {
		return fmt.Errorf("ffmpeg at %s has no mp4 muxer: %s", path, installHint)
	}
	// a real encode with the same arguments Start uses: 2 frames of 64×64
	var segs []Segment
	e, err := Start(ctx, Options{FFmpegPath: path, Width: 64, Height: 64, FPS: 30, Frames: 2}, func(s Segment) error {
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
	if _, err := Codecs(segs[0].Data); err != nil {
		return fmt.Errorf("ffmpeg at %s: trial encode: %w", path, err)
	}
	return nil
}

// output runs the ffmpeg at path with arg and returns what it printed.
func output(ctx context.Context, path string, arg ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path, arg...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ffmpeg at %s does not run (`%s`): %w: %s",
			path, strings.Join(arg, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// Version returns `ffmpeg -version` of ffmpegPath (empty: DefaultFFmpegPath):
// its release, build configuration and library versions, which is what
// names an ffmpeg build when deciding whether two builds give the same
// bytes.
func Version(ctx context.Context, ffmpegPath string) (string, error) {
	path, err := exec.LookPath(cmp.Or(ffmpegPath, DefaultFFmpegPath))
	if err != nil {
		return "", notFound(ffmpegPath, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := output(ctx, path, "-hide_banner", "-version")
	return strings.TrimSpace(v), err
}

// hasEntry reports whether an `ffmpeg -encoders` or `-muxers` listing has
// name in the name column of a line (muxer names may be lists: "mov,mp4").
func hasEntry(listing, name string) bool {
	for line := range strings.Lines(listing) {
		if f := strings.Fields(line); len(f) >= 2 && slices.Contains(strings.Split(f[1], ","), name) {
			return true
		}
	}
	return false
}
