package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	dir := t.TempDir()
	rendered := filepath.Join(dir, "rendered.mp4")
	r := whirl(t, nil, "render", "--seed", "77", "--frames", "20", "--size", "160", "-o", rendered, "--json").ok(t)
	var out struct{ VideoID, SHA256 string }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	want, err := os.ReadFile(rendered)
	if err != nil {
		t.Fatal(err)
	}

	got := filepath.Join(dir, "got.mp4")
	g := whirl(t, nil, "get", out.VideoID, "-o", got).ok(t)
	if !strings.Contains(g.stdout, "verified") || !strings.Contains(g.stdout, "20 frames 160×160") {
		t.Errorf("get: %s", g.stdout)
	}
	if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, want) {
		t.Errorf("get wrote %d bytes (%v), not the rendered %d", len(b), err, len(want))
	}
	j := whirl(t, nil, "get", out.VideoID, "-o", got, "--json").ok(t)
	var jout struct {
		Bytes   int64
		SHA256  string
		VideoID string
		Frames  int
	}
	if err := json.Unmarshal([]byte(j.stdout), &jout); err != nil {
		t.Fatalf("%v: %s", err, j.stdout)
	}
	if jout.SHA256 != out.SHA256 || jout.Bytes != int64(len(want)) || jout.VideoID != out.VideoID || jout.Frames != 20 {
		t.Errorf("get --json %+v, want the render's %s", jout, out.SHA256)
	}

	for _, tc := range []struct{ name, id, stderr string }{
		{"unknown", strings.Repeat("ab", 32), "NotFound"},
		{"malformed", "not-an-id", "video_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.mp4")
			r := whirl(t, nil, "get", tc.id, "-o", path)
			if r.code != exitRefused || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %s", r.code, r.stderr, exitRefused, tc.stderr)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("a refused get left %s", path)
			}
		})
	}
}
