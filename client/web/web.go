// Package web is whirl's browser page: static/index.html, its style sheet and
// static/app.js, the bundle esbuild builds from src/ (TypeScript, with the
// client generated from the proto into src/gen). The files are embedded, so
// a server binary serves the page with no Node.js at run time.
//
// Rebuild after changing src/ or the proto (from the repository root):
//
//	(cd client/web && npm ci)
//	go tool -modfile=tools/go.mod buf generate --template client/web/buf.gen.yaml
//	(cd client/web && npm run check && npm run build)
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"regexp"
)

//go:embed static
var static embed.FS

// Files holds index.html, style.css and app.js at its root.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // "static" is embedded above: cannot happen
	}
	return sub
}

// contentSecurityPolicy lets the page load only its own files and talk only
// to its own origin; video and preview images come from blob: URLs it makes
// itself (Media Source Extensions, the PNG, the download link).
const contentSecurityPolicy = "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; connect-src 'self' blob:; " +
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// shareLink is the path of a link to a finished video, /v/{video_id}: the
// page then shows that video alone.
var shareLink = regexp.MustCompile(`^/v/[0-9a-f]{64}$`)

// Handler serves the page: index.html at "/" and at every share link, its
// assets beside it.
func Handler() http.Handler {
	files := http.FileServerFS(Files())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if shareLink.MatchString(r.URL.Path) {
			http.ServeFileFS(w, r, Files(), "index.html")
			return
		}
		files.ServeHTTP(w, r)
	})
}
