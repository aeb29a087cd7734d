package benchrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Matplotlib is the baseline: seed_matplotlib.py's own account of one
// render (FuncAnimation + FFMpegWriter, libx264 medium/CRF 23).
type Matplotlib struct {
	Ran    bool   `json:"ran"`
	Note   string `json:"note,omitempty"`
	Script string `json:"script,omitempty"`
	// From the script's JSON line: figure set-up + anim.save(), import
	// excluded.
	Seconds float64 `json:"seconds,omitempty"`
	FPS     float64 `json:"fps_rendered,omitempty"`
	Bytes   int64   `json:"bytes,omitempty"`
	Width   int     `json:"width,omitempty"`
	Height  int     `json:"height,omitempty"`
	// Wall is the whole process, interpreter start and import included.
	Wall     float64 `json:"wall_seconds,omitempty"`
	ChildCPU float64 `json:"cpu_seconds,omitempty"`
}

const mplScript = "seed_matplotlib.py"

// runMatplotlib runs the baseline if cfg asks for it (or, on Auto, if it can)
// and explains in Note why not otherwise.
func runMatplotlib(ctx context.Context, cfg Config) Matplotlib {
	if cfg.Matplotlib == Off {
		return Matplotlib{Note: "skipped (--matplotlib=false)"}
	}
	dir, err := baselineDir(cfg.BaselineDir)
	if err != nil {
		return Matplotlib{Note: "skipped: " + err.Error()}
	}
	script := filepath.Join(dir, mplScript)
	if _, err := os.Stat(script); err != nil {
		return Matplotlib{Note: fmt.Sprintf("skipped: no %s in %s (see --baseline-dir)", mplScript, dir)}
	}
	if out, err := exec.CommandContext(ctx, cfg.Python, "-c", "import matplotlib, numpy").CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return Matplotlib{Script: script, Note: fmt.Sprintf("skipped: %s cannot import matplotlib (%v: %s); apt-get install -y python3-matplotlib", cfg.Python, err, msg)}
	}
	if cfg.Width != 720 || cfg.Height != 720 {
		return Matplotlib{Script: script, Note: fmt.Sprintf("skipped: the baseline draws 720x720 only, this run is %dx%d", cfg.Width, cfg.Height)}
	}
	m, err := runScript(ctx, cfg, script)
	m.Script = script
	if err != nil {
		m.Note = "failed: " + err.Error()
		return m
	}
	m.Ran = true
	return m
}

// runScript runs the baseline once and parses its last line of JSON.
func runScript(ctx context.Context, cfg Config, script string) (Matplotlib, error) {
	var m Matplotlib
	tmp, err := os.MkdirTemp("", "whirl-bench-mpl")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(tmp)
	cfg.logf("matplotlib baseline: %s", script)
	cmd := exec.CommandContext(ctx, cfg.Python, script,
		"--seed", strconv.FormatUint(cfg.Seed, 10), "--wheels", strconv.Itoa(cfg.Wheels),
		"--frames", strconv.Itoa(cfg.Frames), "--fps", strconv.Itoa(cfg.FPS),
		"--out", filepath.Join(tmp, "mpl.mp4"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cpu0 := readCPU()
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return m, fmt.Errorf("%v: %s", err, tail(stderr.String(), 500))
	}
	m.Wall = time.Since(start).Seconds()
	m.ChildCPU = readCPU().children - cpu0.children
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var out struct {
		Seconds     float64 `json:"seconds"`
		FPSRendered float64 `json:"fps_rendered"`
		Bytes       int64   `json:"bytes"`
		Width       int     `json:"width"`
		Height      int     `json:"height"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		return m, fmt.Errorf("parsing its output %q: %w", tail(stdout.String(), 300), err)
	}
	if out.FPSRendered <= 0 {
		return m, fmt.Errorf("no fps_rendered in %q", lines[len(lines)-1])
	}
	m.Seconds, m.FPS, m.Bytes, m.Width, m.Height = out.Seconds, out.FPSRendered, out.Bytes, out.Width, out.Height
	cfg.logf("  matplotlib: %.1f frames/s, %d bytes", m.FPS, m.Bytes)
	return m, nil
}

// baselineDir resolves dir; a relative one is taken from the repository root
// (the directory of the go.mod of github.com/whirl-dev/whirl above the
// working directory).
func baselineDir(dir string) (string, error) {
	if filepath.IsAbs(dir) {
		return dir, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, dir), nil
}

func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if isRoot(d) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("cannot find the repository root (go.mod of github.com/whirl-dev/whirl) above " + wd + "; give --baseline-dir as an absolute path")
		}
		d = parent
	}
}

// isRoot reports whether d holds the go.mod of this module.
func isRoot(d string) bool {
	b, err := os.ReadFile(filepath.Join(d, "go.mod"))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if strings.TrimSpace(line) == "module github.com/whirl-dev/whirl" {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
