// Package docscheck finds the relative links in the repository's Markdown
// that do not resolve: a file or directory that does not exist, or an anchor
// that no heading of the target produces under GitHub's slug rules. Its test
// runs the check over the whole repository, so a moved section or a renamed
// file fails `go test ./...` instead of leaving a dead link behind.
package docscheck

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Problem is one link that does not resolve.
type Problem struct {
	File   string // the Markdown file, relative to the root checked
	Line   int    // 1-based
	Target string // the link as written
	Reason string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Target, p.Reason)
}

// Link is a link target found in a document.
type Link struct {
	Line   int
	Target string
}

// skipDir reports directories whose Markdown is not the project's own:
// dependencies and version-control or tool state.
func skipDir(name string) bool {
	return name == "node_modules" || (strings.HasPrefix(name, ".") && name != ".")
}

// Check walks root for *.md files and returns every relative link among
// them that does not resolve. Links with a scheme (https:, mailto:) are not
// followed; anchors are checked only in Markdown targets.
func Check(root string) ([]Problem, error) {
	var problems []Problem
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".md") {
			return nil
		}
		ps, err := checkFile(root, path)
		problems = append(problems, ps...)
		return err
	})
	return problems, err
}

func checkFile(root, path string) ([]Problem, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rel, _ := filepath.Rel(root, path)
	var problems []Problem
	for _, l := range Links(string(doc)) {
		if reason := resolve(root, path, string(doc), l.Target); reason != "" {
			problems = append(problems, Problem{File: filepath.ToSlash(rel), Line: l.Line, Target: l.Target, Reason: reason})
		}
	}
	return problems, nil
}

// scheme matches a link that leaves the repository (https:, mailto:, ...).
var scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:|^//`)

// resolve returns why target, written in the file at path (whose text is
// doc), does not resolve, or "" when it does.
func resolve(root, path, doc, target string) string {
	if scheme.MatchString(target) {
		return ""
	}
	file, frag, _ := strings.Cut(target, "#")
	file, err := url.PathUnescape(file)
	if err != nil {
		return "bad escape in path"
	}
	var dest string
	switch {
	case file == "":
		dest = path
	case strings.HasPrefix(file, "/"):
		dest = filepath.Join(root, filepath.FromSlash(file))
	default:
		dest = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
	}
	info, err := os.Stat(dest)
	if err != nil {
		return "no such file or directory"
	}
	if frag == "" {
		return ""
	}
	if info.IsDir() {
		// GitHub shows a directory's README.md below its listing.
		dest = filepath.Join(dest, "README.md")
	}
	if !strings.HasSuffix(dest, ".md") {
		return "" // line anchors (#L10) and the like: not checked
	}
	text := doc
	if dest != path {
		b, err := os.ReadFile(dest)
		if err != nil {
			return "anchor into a directory without README.md"
		}
		text = string(b)
	}
	frag, err = url.PathUnescape(frag)
	if err != nil {
		return "bad escape in anchor"
	}
	if !Anchors(text)[frag] {
		return fmt.Sprintf("no heading in %s has the anchor #%s", filepath.Base(dest), frag)
	}
	return ""
}

var (
	fence      = regexp.MustCompile("^ {0,3}(```+|~~~+)")
	heading    = regexp.MustCompile(`^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$`)
	codeSpan   = regexp.MustCompile("(`+)[^`]*?`+")
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$`)
	htmlRef    = regexp.MustCompile(`\b(?:href|src)="([^"]+)"`)
	htmlID     = regexp.MustCompile(`<a\s[^>]*\b(?:id|name)="([^"]+)"`)
	mdLink     = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag    = regexp.MustCompile(`<[^>]+>`)
)

// lines calls fn with each line of doc outside fenced code blocks.
func lines(doc string, fn func(n int, line string)) {
	open := ""
	for i, line := range strings.Split(doc, "\n") {
		if m := fence.FindStringSubmatch(line); m != nil {
			switch {
			case open == "":
				open = m[1]
			case strings.HasPrefix(m[1], open[:1]) && len(m[1]) >= len(open):
				open = ""
			}
			continue
		}
		if open == "" {
			fn(i+1, line)
		}
	}
}

// Links returns the link and image targets of doc, outside code blocks and
// code spans: inline links, reference definitions and HTML href/src.
func Links(doc string) []Link {
	var out []Link
	lines(doc, func(n int, line string) {
		line = codeSpan.ReplaceAllString(line, "")
		if m := refDef.FindStringSubmatch(line); m != nil {
			out = append(out, Link{n, m[1]})
			return
		}
		for _, re := range []*regexp.Regexp{inlineLink, htmlRef} {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				out = append(out, Link{n, m[1]})
			}
		}
	})
	return out
}

// Anchors returns every anchor doc defines: the slug of each heading, with
// -1, -2, ... appended to repeats as GitHub does, and the id or name of
// each HTML <a> element.
func Anchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	lines(doc, func(_ int, line string) {
		for _, m := range htmlID.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			return
		}
		s := Slug(m[1])
		if k := seen[s]; k > 0 {
			anchors[fmt.Sprintf("%s-%d", s, k)] = true
		} else {
			anchors[s] = true
		}
		seen[s]++
	})
	return anchors
}

// Slug returns the anchor GitHub gives a heading whose Markdown text is
// text: the rendered text in lower case, with everything but letters,
// digits, marks, '_', '-' and spaces dropped, and each space turned into
// '-'.
func Slug(text string) string {
	text = mdLink.ReplaceAllString(text, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
