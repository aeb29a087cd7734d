// Package mp4check is a test helper: it checks a fragmented MP4 (whirl's
// output) with ffprobe (which must be installed) and with fmp4's own box
// walker, and fails the test on any mismatch. It runs a process, so it
// lives beside fmp4 rather than in it.
package mp4check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/fmp4"
)

// Expect is what the file must be. Zero fields are not checked, except that
// the codec must always be h264 in yuv420p and the boxes always in the order
// ftyp, moov, then moof/mdat pairs.
type Expect struct {
	Width, Height int
	FPS           int // r_frame_rate must be FPS/1
	Frames        int // decoded frames (ffprobe -count_frames)
	// Duration of the file; when zero and Frames and FPS are set,
	// Frames/FPS. Checked to within half a frame (or 1 ms without FPS).
	Duration time.Duration
	Profile  string // ffprobe's profile name, e.g. "High"
	// Timestamps checks that the packets' decode times strictly increase
	// and that the decoded frames' presentation times strictly increase
	// in equal steps (one frame each: no gap, no overlap, no jump).
	Timestamps bool
}

// Info is what ffprobe and the box walker found.
type Info struct {
	Codec, Profile, PixFmt string
	Level                  int // ffprobe's level, e.g. 31 for 3.1
	Width, Height          int
	FrameRate              string // e.g. "30/1"
	Frames                 int
	Duration               time.Duration
	FramesRaw, DurationRaw string // ffprobe's own text for Frames and Duration
	Codecs                 string // from the avcC box, e.g. "avc1.64001f"
	Boxes                  []fmp4.Box
	Fragments              int // moof/mdat pairs
}

// FFprobePath is the ffprobe these checks run.
const FFprobePath = "ffprobe"

// Probe writes data to a temporary file and checks it like ProbeFile.
func Probe(t testing.TB, data []byte, want Expect) Info {
	t.Helper()
	path := filepath.Join(t.TempDir(), "probe.mp4")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("mp4check: %v", err)
	}
	return ProbeFile(t, path, want)
}

// ProbeFile checks the MP4 file at path against want and returns what it
// found. Failures are reported with t.Errorf; unreadable files with t.Fatalf.
func ProbeFile(t testing.TB, path string, want Expect) Info {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("mp4check: %v", err)
	}
	var info Info
	info.Boxes, err = fmp4.Boxes(data)
	if err != nil {
		t.Errorf("mp4check: %s: boxes: %v", path, err)
	}
	info.Fragments = checkOrder(t, path, info.Boxes)
	if info.Codecs, err = fmp4.Codecs(data); err != nil {
		t.Errorf("mp4check: %s: codecs: %v", path, err)
	}

	probeStream(t, path, &info)
	checkInfo(t, path, info, want)
	return info
}

// probeStream fills info's stream fields from ffprobe, decoding every frame.
func probeStream(t testing.TB, path string, info *Info) {
	t.Helper()
	cmd := exec.Command(FFprobePath, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,profile,level,pix_fmt,width,height,r_frame_rate,nb_read_frames:format=duration",
		"-of", "json", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mp4check: ffprobe %s: %v: %s", path, err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Errorf("mp4check: ffprobe %s reported errors while decoding:\n%s", path, s)
	}
	var out struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			Profile      string `json:"profile"`
			Level        int    `json:"level"`
			PixFmt       string `json:"pix_fmt"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			RFrameRate   string `json:"r_frame_rate"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("mp4check: ffprobe %s: %v: %s", path, err, stdout.String())
	}
	if len(out.Streams) != 1 {
		t.Fatalf("mp4check: %s: %d video streams, want 1", path, len(out.Streams))
	}
	s := out.Streams[0]
	info.Codec, info.Profile, info.Level, info.PixFmt = s.CodecName, s.Profile, s.Level, s.PixFmt
	info.Width, info.Height, info.FrameRate = s.Width, s.Height, s.RFrameRate
	info.Frames, _ = strconv.Atoi(s.NbReadFrames)
	info.FramesRaw, info.DurationRaw = s.NbReadFrames, out.Format.Duration
	if d, err := strconv.ParseFloat(out.Format.Duration, 64); err == nil {
		info.Duration = time.Duration(math.Round(d * float64(time.Second)))
	}
}

// checkInfo reports every way info differs from want.
func checkInfo(t testing.TB, path string, info Info, want Expect) {
	t.Helper()

	if info.Codec != "h264" {
		t.Errorf("mp4check: %s: codec %q, want h264", path, info.Codec)
	}
	if info.PixFmt != "yuv420p" {
		t.Errorf("mp4check: %s: pix_fmt %q, want yuv420p", path, info.PixFmt)
	}
	if want.Width != 0 && (info.Width != want.Width || info.Height != want.Height) {
		t.Errorf("mp4check: %s: size %dx%d, want %dx%d", path, info.Width, info.Height, want.Width, want.Height)
	}
	if want.FPS != 0 && info.FrameRate != fmt.Sprintf("%d/1", want.FPS) {
		t.Errorf("mp4check: %s: r_frame_rate %s, want %d/1", path, info.FrameRate, want.FPS)
	}
	if want.Frames != 0 && info.Frames != want.Frames {
		t.Errorf("mp4check: %s: %d frames decoded (nb_read_frames %q), want %d", path, info.Frames, info.FramesRaw, want.Frames)
	}
	wantDur, tol := want.Duration, time.Millisecond
	if want.FPS != 0 {
		tol = time.Second / time.Duration(2*want.FPS)
		if wantDur == 0 && want.Frames != 0 {
			wantDur = time.Duration(want.Frames) * time.Second / time.Duration(want.FPS)
		}
	}
	if wantDur != 0 && (info.Duration < wantDur-tol || info.Duration > wantDur+tol) {
		t.Errorf("mp4check: %s: duration %v (%q), want %v ± %v", path, info.Duration, info.DurationRaw, wantDur, tol)
	}
	if want.Profile != "" && info.Profile != want.Profile {
		t.Errorf("mp4check: %s: profile %q, want %q", path, info.Profile, want.Profile)
	}
	if info.Codecs != "" {
		if err := MatchCodecs(info.Codecs, info.Profile, info.Level); err != nil {
			t.Errorf("mp4check: %s: %v", path, err)
		}
	}
	if want.Timestamps {
		if err := checkTimestamps(path); err != nil {
			t.Errorf("mp4check: %s: %v", path, err)
		}
	}
}

// checkTimestamps is Expect.Timestamps.
func checkTimestamps(path string) error {
	list := func(entries string) ([]int64, error) {
		out, err := exec.Command(FFprobePath, "-v", "error", "-select_streams", "v:0",
			"-show_entries", entries, "-of", "csv=p=0", path).Output()
		if err != nil {
			return nil, fmt.Errorf("ffprobe %s: %w", entries, err)
		}
		var ts []int64
		for _, f := range strings.Fields(string(out)) {
			v, err := strconv.ParseInt(strings.Trim(f, ","), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("ffprobe %s: %q: %w", entries, f, err)
			}
			ts = append(ts, v)
		}
		return ts, nil
	}
	dts, err := list("packet=dts")
	if err != nil {
		return err
	}
	for i := 1; i < len(dts); i++ {
		if dts[i] <= dts[i-1] {
			return fmt.Errorf("packet %d: dts %d after %d, not increasing", i, dts[i], dts[i-1])
		}
	}
	pts, err := list("frame=pts")
	if err != nil {
		return err
	}
	for i := 1; i < len(pts); i++ {
		if step := pts[i] - pts[i-1]; step <= 0 || step != pts[1]-pts[0] {
			return fmt.Errorf("frame %d: pts %d after %d (first step %d): not one frame on", i, pts[i], pts[i-1], pts[1]-pts[0])
		}
	}
	return nil
}

// MatchCodecs checks that an "avc1.PPCCLL" codecs string agrees with the
// profile name and level ffprobe reports for the same stream.
func MatchCodecs(codecs, profile string, level int) error {
	var p, c, l byte
	if len(codecs) != len("avc1.PPCCLL") || (!strings.HasPrefix(codecs, "avc1.") && !strings.HasPrefix(codecs, "avc3.")) {
		return fmt.Errorf("codecs %q is not avc1.PPCCLL", codecs)
	}
	if _, err := fmt.Sscanf(codecs[5:], "%02x%02x%02x", &p, &c, &l); err != nil {
		return fmt.Errorf("codecs %q: %v", codecs, err)
	}
	wantP, ok := map[string]byte{
		"Constrained Baseline": 66, "Baseline": 66, "Main": 77, "Extended": 88,
		"High": 100, "High 10": 110, "High 4:2:2": 122, "High 4:4:4 Predictive": 244,
	}[profile]
	switch {
	case !ok:
		return fmt.Errorf("ffprobe reports unknown H.264 profile %q", profile)
	case p != wantP:
		return fmt.Errorf("codecs %q has profile_idc %d, ffprobe says %s (%d)", codecs, p, profile, wantP)
	case int(l) != level:
		return fmt.Errorf("codecs %q has level_idc %d, ffprobe says level %d", codecs, l, level)
	case profile == "Constrained Baseline" && c&0x40 == 0:
		return fmt.Errorf("codecs %q lacks constraint_set1_flag for Constrained Baseline", codecs)
	}
	return nil
}

// checkOrder checks ftyp, moov, then one or more moof/mdat pairs, and returns
// the number of pairs.
func checkOrder(t testing.TB, path string, boxes []fmp4.Box) int {
	t.Helper()
	types := make([]string, len(boxes))
	for i, b := range boxes {
		types[i] = b.Type
	}
	bad := func(why string) int {
		t.Errorf("mp4check: %s: box order %v: %s", path, abbreviate(types), why)
		return 0
	}
	if len(types) < 4 || types[0] != "ftyp" || types[1] != "moov" {
		return bad("want ftyp, moov, then moof/mdat pairs")
	}
	rest := types[2:]
	if len(rest)%2 != 0 {
		return bad("odd number of boxes after moov")
	}
	for i := 0; i < len(rest); i += 2 {
		if rest[i] != "moof" || rest[i+1] != "mdat" {
			return bad(fmt.Sprintf("box %d is %s/%s, want moof/mdat", i+2, rest[i], rest[i+1]))
		}
	}
	return len(rest) / 2
}

func abbreviate(types []string) []string {
	if len(types) <= 12 {
		return types
	}
	return append(append(types[:6:6], "…"), types[len(types)-5:]...)
}
