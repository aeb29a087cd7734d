package browser

import (
	"math"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// VideosPath is where finished videos are served: VideosPath+ID+".mp4"
// the bytes, VideosPath+ID+".json" what the server knows of them.
const VideosPath = "/v1/videos/"

// Videos finds finished videos by id for plain HTTP.
type Videos interface {
	// OpenVideo opens the finished video id, verified, from whichever
	// cache tier holds it; ok is false when none does.
	OpenVideo(id string) (v Video, ok bool)
	// Admit counts r against its client's limits on reading videos: ok
	// with done to call when the response is written, or refused with
	// how long the client should wait (zero: unknown).
	Admit(r *http.Request) (done func(), retry time.Duration, ok bool)
}

// Video is an open finished video.
type Video struct {
	// File holds the video's bytes; the handler closes it.
	File *os.File
	// SHA256 is the lowercase hex digest of the bytes, their entity tag.
	SHA256 string
	// Facts describes the video as a GetVideo header would; its curve is
	// nil when the server does not know it. Only the JSON form calls it:
	// decoding the facts costs more than sending a range.
	Facts func() *whirlv1.RenderHeader
}

// videoID is the form of every video id (a lowercase hex SHA-256): an id
// that is not one never reaches the store.
var videoID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// immutable is the caching of a finished video: its id names its bytes.
const immutable = "public, max-age=31536000, immutable"

// videosHandler serves GET and HEAD on VideosPath: the MP4 with byte
// ranges and conditional requests by http.ServeContent straight from the
// cache's file (sendfile on plain TCP), or the facts as JSON.
func videosHandler(videos Videos) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, VideosPath)
		id, ext, _ := strings.Cut(name, ".")
		if (ext != "mp4" && ext != "json") || !videoID.MatchString(id) {
			http.Error(w, "not a video: the path must be "+VideosPath+"ID.mp4 or ID.json, ID the 64 lowercase hex digits of a video_id", http.StatusBadRequest)
			return
		}
		done, retry, ok := videos.Admit(r)
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(retry.Seconds())))))
			http.Error(w, "too many video requests from this client; retry later", http.StatusTooManyRequests)
			return
		}
		defer done()
		v, ok := videos.OpenVideo(id)
		if !ok {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "video "+id+" is not held by this server: render it first", http.StatusNotFound)
			return
		}
		defer v.File.Close()
		h := w.Header()
		h.Set("Cache-Control", immutable)
		if ext == "json" {
			h.Set("Content-Type", "application/json")
			b, err := protojson.Marshal(v.Facts())
			if err != nil {
				http.Error(w, "cannot describe the video", http.StatusInternalServerError)
				return
			}
			if r.Method != http.MethodHead {
				_, _ = w.Write(b)
			}
			return
		}
		h.Set("Content-Type", "video/mp4")
		h.Set("ETag", `"`+v.SHA256+`"`)
		// No modification time: the ETag alone validates, and never changes.
		http.ServeContent(w, r, "", time.Time{}, v.File)
	})
}

// withVideos routes VideosPath to videos and everything else to next.
func withVideos(next http.Handler, videos Videos) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+VideosPath, videosHandler(videos))
	mux.Handle("/", next)
	return mux
}
