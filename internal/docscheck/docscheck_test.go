package docscheck_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/whirl-dev/whirl/internal/docscheck"
)

// TestRepositoryLinks is the check itself: every relative link and anchor
// in the repository's Markdown resolves.
func TestRepositoryLinks(t *testing.T) {
	problems, err := docscheck.Check(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("broken link: %s", p)
	}
}

// The slugs GitHub gives these headings, as its rendered pages show them.
func TestSlug(t *testing.T) {
	tests := []struct{ heading, want string }{
		{"What CI runs", "what-ci-runs"},
		{"The service config: `proto/whirl/v1/service_config.json`", "the-service-config-protowhirlv1service_configjson"},
		{"Never the same video twice: cache, shared renders, resumable streams", "never-the-same-video-twice-cache-shared-renders-resumable-streams"},
		{"Python (`examples/python/render.py`)", "python-examplespythonrenderpy"},
		{"G2. Segments of equal length, GOP 4 s against 5 s (the choice since)", "g2-segments-of-equal-length-gop-4-s-against-5-s-the-choice-since"},
		{"Speed-up ≥ 1.6 ×", "speed-up--16-"},
		{"**Bold** and [a link](x.md)", "bold-and-a-link"},
		{"snake_case stays", "snake_case-stays"},
		{"Ünïcode letters", "ünïcode-letters"},
	}
	for _, tt := range tests {
		if got := docscheck.Slug(tt.heading); got != tt.want {
			t.Errorf("Slug(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}

func TestAnchors(t *testing.T) {
	doc := "# Title\n## Usage\n## Usage\n```\n# not a heading\n```\n<a id=\"custom\"></a>\n### Closed ###\n"
	got := docscheck.Anchors(doc)
	for _, want := range []string{"title", "usage", "usage-1", "custom", "closed"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Errorf("a line in a code block became an anchor")
	}
}

// TestCheck runs the check over a small tree with one link of each kind,
// good and broken, and expects exactly the broken ones.
func TestCheck(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/API.md", "# API\n## Status codes\n")
	write("docs/pic.png", "")
	write("examples/py/README.md", "# Python example\n")
	write("node_modules/x/README.md", "[dead](nowhere.md)\n")
	write("README.md", strings.Join([]string{
		"[ok file](docs/API.md)",
		"[ok anchor](docs/API.md#status-codes)",
		"[ok self](#top)",
		"# Top",
		"![ok image](docs/pic.png \"a title\")",
		"[ok dir](examples/py/) and [ok dir anchor](examples/py#python-example)",
		"[ok web](https://example.com/nowhere.md) [ok mail](mailto:a@example.com)",
		"`[in a span](gone.md)` is code",
		"```",
		"[in a fence](gone.md)",
		"```",
		"[bad file](docs/NOPE.md)",
		"[bad anchor](docs/API.md#status)",
		"[bad self](#nowhere)",
		"[ref]: docs/missing.png",
		`<img src="docs/absent.png">`,
	}, "\n"))
	problems, err := docscheck.Check(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.File+" "+p.Target)
	}
	want := []string{
		"README.md docs/NOPE.md",
		"README.md docs/API.md#status",
		"README.md #nowhere",
		"README.md docs/missing.png",
		"README.md docs/absent.png",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
