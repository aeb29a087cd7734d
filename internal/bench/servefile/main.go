// Command servefile serves one file at every path with net/http's
// ServeContent and nothing else, on the same http.Server settings as
// whirl's HTTP listener. scripts/bench-videos.sh runs it beside whirl and
// nginx: it is the floor under whirl's /v1/videos/, what Go's own HTTP
// server with sendfile can do before whirl adds a byte of work.
//
// Usage: servefile ADDR FILE
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/whirl-dev/whirl/internal/browser"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: servefile ADDR FILE")
		os.Exit(2)
	}
	path := os.Args[2]
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(w, r, "", time.Time{}, f)
	})
	lis, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := browser.NewServer(h, nil).Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
