package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

const videoOrigin = "https://share.example.com"

// renderOn renders a small video on p with the Go client and returns its
// bytes and id.
func renderOn(t *testing.T, p *process, seed uint64) ([]byte, string) {
	t.Helper()
	c, err := client.Dial(t.Context(), p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var video bytes.Buffer
	res, err := c.Render(t.Context(), &whirlv1.RenderAnimationRequest{
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: seed}},
		Video:  &whirlv1.VideoOptions{Width: 160, Height: 160, Frames: 60},
	}, &video)
	if err != nil {
		t.Fatal(err)
	}
	return video.Bytes(), res.Trailer.GetVideoId()
}

// TestVideosOverHTTP: a finished video is a plain, cacheable HTTP
// resource: whole, in ranges, revalidated by ETag, with HEAD and CORS.
func TestVideosOverHTTP(t *testing.T) {
	p := startServer(t, "--cors-origins", videoOrigin)
	video, id := renderOn(t, p, 71)
	size := len(video)
	url := "http://" + p.httpAddr + "/v1/videos/" + id + ".mp4"
	sum := sha256.Sum256(video)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`

	for _, tc := range []struct {
		name, method string
		header       map[string]string
		status       int
		body         []byte
		want         map[string]string
	}{
		{"whole", "GET", nil, 200, video, map[string]string{
			"Content-Type": "video/mp4", "Content-Length": strconv.Itoa(size), "ETag": etag,
			"Cache-Control": "public, max-age=31536000, immutable", "Accept-Ranges": "bytes",
		}},
		{"head", "HEAD", nil, 200, nil, map[string]string{"Content-Length": strconv.Itoa(size), "ETag": etag}},
		{"range", "GET", map[string]string{"Range": "bytes=100-1123"}, 206, video[100:1124], map[string]string{
			"Content-Range": fmt.Sprintf("bytes 100-1123/%d", size), "Content-Length": "1024",
		}},
		{"suffix range", "GET", map[string]string{"Range": "bytes=-10"}, 206, video[size-10:], map[string]string{
			"Content-Range": fmt.Sprintf("bytes %d-%d/%d", size-10, size-1, size),
		}},
		{"open range", "GET", map[string]string{"Range": fmt.Sprintf("bytes=%d-", size/2)}, 206, video[size/2:], nil},
		{"unsatisfiable", "GET", map[string]string{"Range": fmt.Sprintf("bytes=%d-", size)}, 416, nil, nil},
		{"not modified", "GET", map[string]string{"If-None-Match": etag}, 304, nil, map[string]string{"ETag": etag}},
		{"other etag", "GET", map[string]string{"If-None-Match": `"abc"`}, 200, video, nil},
		{"cors", "GET", map[string]string{"Origin": videoOrigin, "Range": "bytes=0-9"}, 206, video[:10], map[string]string{
			"Access-Control-Allow-Origin": videoOrigin,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Errorf("body of %d bytes differs from the video's bytes wanted (%d)", len(body), len(tc.body))
			}
			if tc.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD sent %d bytes of body", len(body))
			}
			for k, v := range tc.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if tc.name == "cors" && !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Content-Range") {
				t.Errorf("Access-Control-Expose-Headers %q lacks Content-Range", resp.Header.Get("Access-Control-Expose-Headers"))
			}
		})
	}
	t.Run("facts", func(t *testing.T) {
		resp, err := http.Get("http://" + p.httpAddr + "/v1/videos/" + id + ".json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var facts struct {
			Frames  int
			Width   int
			VideoID string
			Curve   struct{ Wheels []any }
		}
		if err := json.NewDecoder(resp.Body).Decode(&facts); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		if facts.Frames != 60 || facts.Width != 160 || facts.VideoID != id || len(facts.Curve.Wheels) == 0 {
			t.Errorf("facts %+v", facts)
		}
	})
	t.Run("curl", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("no curl")
		}
		out := filepath.Join(t.TempDir(), "part")
		if b, err := exec.Command(curl, "-sSf", "-r", "0-4095", "-o", out, url).CombinedOutput(); err != nil {
			t.Fatalf("curl: %v: %s", err, b)
		}
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, video[:4096]) {
			t.Errorf("curl -r 0-4095 got %d bytes (%v)", len(got), err)
		}
	})
}

func TestVideosOverHTTPRefusals(t *testing.T) {
	p := startServer(t)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/v1/videos/" + strings.Repeat("0", 64) + ".mp4", 404},
		{"/v1/videos/" + strings.Repeat("0", 64) + ".json", 404},
		{"/v1/videos/" + strings.Repeat("A", 64) + ".mp4", 400},
		{"/v1/videos/abc.mp4", 400},
		{"/v1/videos/" + strings.Repeat("0", 64) + ".webm", 400},
		{"/v1/videos/" + strings.Repeat("0", 64), 400},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get("http://" + p.httpAddr + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if cc := resp.Header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
				t.Errorf("a refusal is cached as immutable: %q", cc)
			}
		})
	}
}

// TestVideosOverHTTPLimit: HTTP reads of videos share the GetVideo budget
// of their client; past it the answer is 429 with Retry-After.
func TestVideosOverHTTPLimit(t *testing.T) {
	p := startServer(t, "--video-rate", "0.01", "--video-burst", "2")
	_, id := renderOn(t, p, 72)
	c, err := client.Dial(t.Context(), p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetVideo(t.Context(), id, io.Discard); err != nil {
		t.Fatal(err)
	}
	url := "http://" + p.httpAddr + "/v1/videos/" + id + ".mp4"
	for i, want := range []int{200, 429} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("HTTP read %d after one GetVideo: status %d, want %d", i+1, resp.StatusCode, want)
		}
		if want == 429 {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
	}
}
