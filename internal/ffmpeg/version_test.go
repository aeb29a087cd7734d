package ffmpeg_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whirl-dev/whirl/internal/ffmpeg"
)

// TestVersion: the build description comes from the ffmpeg that runs, and a
// different binary gives a different one.
func TestVersion(t *testing.T) {
	v, err := ffmpeg.Version(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "ffmpeg version ") || !strings.Contains(v, "libavcodec") {
		t.Fatalf("Version = %q, want ffmpeg's -version output", v)
	}
	fake := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho ffmpeg version 0.0-other\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if other, err := ffmpeg.Version(t.Context(), fake); err != nil || other != "ffmpeg version 0.0-other" {
		t.Fatalf("Version(other build) = %q, %v", other, err)
	}
	if _, err := ffmpeg.Version(t.Context(), "no-such-ffmpeg-binary"); !errors.Is(err, ffmpeg.ErrNotFound) {
		t.Fatalf("Version(missing) = %v, want ErrNotFound", err)
	}
}
