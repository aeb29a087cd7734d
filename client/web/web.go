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

// Handler serves the page: index.html at "/", its assets beside it.
func Handler() http.Handler {
	return http.FileServerFS(Files())
}
