package robustness

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// WriteResults writes what a failed run needs to be understood and
// replayed into a new folder under dir: the seed, the history as JSON,
// porcupine's visualisation, the samples, the faults, the violations and
// the replicas' logs (logs: name to file). It returns the folder.
func WriteResults(dir, name string, p Params, rep *Report, logs map[string]string) (string, error) {
	out := filepath.Join(dir, fmt.Sprintf("whirl-robustness-%s-seed%d-%s", name, rep.Seed, time.Now().UTC().Format("20060102T150405")))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	write := func(file string, data []byte) error { return os.WriteFile(filepath.Join(out, file), data, 0o644) }
	history, err := MarshalHistory(rep.History)
	if err != nil {
		return out, err
	}
	samples, err := json.Marshal(rep.Samples)
	if err != nil {
		return out, err
	}
	faults, err := json.MarshalIndent(rep.Faults, "", "  ")
	if err != nil {
		return out, err
	}
	seed := fmt.Sprintf("WHIRL_ROBUSTNESS_SEED=%d\nlinearizability: %s\n", rep.Seed, rep.Check)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"seed.txt", []byte(seed)},
		{"history.json", history},
		{"samples.json", samples},
		{"faults.json", faults},
		{"violations.txt", []byte(strings.Join(rep.Violations, "\n") + "\n")},
	} {
		if err := write(f.name, f.data); err != nil {
			return out, err
		}
	}
	if err := porcupine.VisualizePath(p.Model(), rep.Info, filepath.Join(out, "porcupine.html")); err != nil {
		return out, fmt.Errorf("porcupine visualisation: %w", err)
	}
	for name, path := range logs {
		if err := copyFile(path, filepath.Join(out, name)); err != nil {
			return out, err
		}
	}
	return out, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
