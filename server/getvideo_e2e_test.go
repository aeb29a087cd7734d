package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// getCommand is each example's command that fetches a video by id.
func getCommand(e example) []string {
	if e.name == "node" {
		return []string{"node_modules/.bin/tsx", "src/get.ts"}
	}
	return []string{e.argv[0], "get.py"}
}

// TestExamplesGetVideo: a video the Go client rendered is fetched by id,
// with no lease, by each example, which verifies it against the trailer;
// an unknown id is NOT_FOUND.
func TestExamplesGetVideo(t *testing.T) {
	exs := examples(t)
	p := startServer(t)
	c, err := client.Dial(t.Context(), p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var video bytes.Buffer
	res, err := c.Render(t.Context(), &whirlv1.RenderAnimationRequest{
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 61}},
		Video:  &whirlv1.VideoOptions{Width: 160, Height: 160, Frames: 30},
	}, &video)
	if err != nil {
		t.Fatal(err)
	}
	id := res.Trailer.GetVideoId()
	for _, e := range exs {
		t.Run(e.name, func(t *testing.T) {
			argv := getCommand(e)
			out := filepath.Join(t.TempDir(), "got.mp4")
			cmd := exec.Command(argv[0], append(argv[1:], "--server", p.addr, id, "-o", out)...)
			cmd.Dir = e.dir
			stdout, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s get: %v: %s", e.name, err, stdout)
			}
			m := verified.FindStringSubmatch(string(stdout))
			if m == nil || m[2] != res.SHA256 || !strings.Contains(string(stdout), "30 frames 160x160") {
				t.Fatalf("%s get printed %q; want sha256 %s verified and the video's facts", e.name, stdout, res.SHA256)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != res.SHA256 {
				t.Errorf("%s get wrote a file with sha256 %x", e.name, sum)
			}

			cmd = exec.Command(argv[0], append(argv[1:], "--server", p.addr, strings.Repeat("0", 64), "-o", out+".missing")...)
			cmd.Dir = e.dir
			combined, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(strings.ToLower(string(combined)), "not") || !strings.Contains(strings.ToLower(string(combined)), "found") {
				t.Errorf("%s get of an unknown id: %v: %s", e.name, err, combined)
			}
			if _, err := os.Stat(out + ".missing"); !os.IsNotExist(err) {
				t.Errorf("%s get left a file for an unknown id", e.name)
			}
		})
	}
}
