package ffmpeg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Errors the probes wrap, for errors.Is.
var (
	ErrNotFound  = errors.New("ffmpeg not found")
	ErrNoEncoder = errors.New("ffmpeg lacks an encoder")
	ErrNoMuxer   = errors.New("ffmpeg lacks a muxer")
)

const installHint = "install it with `apt-get install -y ffmpeg`"

// NotFound is the error for an ffmpeg at path that could not be run
// because it is not there; err says why.
func NotFound(path string, err error) error {
	return fmt.Errorf("%w at %s: %s (%v)", ErrNotFound, path, installHint, err)
}

// probeTimeout bounds each probe's run of ffmpeg.
const probeTimeout = 30 * time.Second

// LookPath resolves path ("": DefaultPath) as exec.LookPath does, failing
// with ErrNotFound.
func LookPath(path string) (string, error) {
	if path == "" {
		path = DefaultPath
	}
	found, err := exec.LookPath(path)
	if err != nil {
		return "", NotFound(path, err)
	}
	return found, nil
}

// Version returns `ffmpeg -version` of path ("": DefaultPath): its
// release, build configuration and library versions, which is what names
// an ffmpeg build when deciding whether two builds give the same bytes.
func Version(ctx context.Context, path string) (string, error) {
	found, err := LookPath(path)
	if err != nil {
		return "", err
	}
	v, err := output(ctx, found, "-hide_banner", "-version")
	return strings.TrimSpace(v), err
}

// Has verifies that the ffmpeg at path (resolved already, see LookPath)
// runs and has the encoder and the muxer named, failing with ErrNoEncoder
// or ErrNoMuxer.
func Has(ctx context.Context, path, encoder, muxer string) error {
	if _, err := output(ctx, path, "-hide_banner", "-version"); err != nil {
		return err
	}
	encoders, err := output(ctx, path, "-hide_banner", "-encoders")
	if err != nil {
		return err
	}
	if !hasEntry(encoders, encoder) {
		return fmt.Errorf("%w %s at %s: install a build with it (Debian's: `apt-get install -y ffmpeg`)", ErrNoEncoder, encoder, path)
	}
	muxers, err := output(ctx, path, "-hide_banner", "-muxers")
	if err != nil {
		return err
	}
	if !hasEntry(muxers, muxer) {
		return fmt.Errorf("%w %s at %s: %s", ErrNoMuxer, muxer, path, installHint)
	}
	return nil
}

// output runs the ffmpeg at path with arg and returns what it printed.
func output(ctx context.Context, path string, arg ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, arg...)
	cmd.Env = Env(os.Environ())
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ffmpeg at %s does not run (`%s`): %w: %s",
			path, strings.Join(arg, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
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
