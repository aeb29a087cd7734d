// Package browser serves whirl over plain HTTP to browsers and other HTTP
// clients: every RPC of the gRPC server in the Connect protocol and in
// gRPC-Web, transcoded by vanguard in front of that same *grpc.Server (so its
// interceptors, limits, health and status details apply unchanged; no RPC is
// implemented twice), the page at "/", finished videos as plain files
// (VideosPath), and CORS for listed origins.
package browser

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"connectrpc.com/cors"
	"connectrpc.com/vanguard"
	"connectrpc.com/vanguard/vanguardgrpc"
	"google.golang.org/grpc"
)

// maxMessageBytes bounds what the transcoder buffers per message. Requests
// are capped far lower by the gRPC server itself (1 MiB); the largest
// responses are still PNGs (2048×2048 at most).
const maxMessageBytes = 32 << 20

// Options configure the handler.
type Options struct {
	// Page serves every path that is not an RPC (nil: 404).
	Page http.Handler
	// CORSOrigins may call the RPCs from pages they serve: exact origins
	// such as "https://app.example.com", or "*" for any. Empty: no CORS
	// headers at all, so browsers allow only same-origin calls.
	CORSOrigins []string
	// Videos, if set, serves finished videos over plain HTTP at
	// VideosPath (GET and HEAD, byte ranges, ETag).
	Videos Videos
}

// NewHandler returns the HTTP handler for gs. It must be called after every
// service is registered on gs.
func NewHandler(gs *grpc.Server, o Options) (http.Handler, error) {
	opts := []vanguard.TranscoderOption{
		vanguard.WithDefaultServiceOptions(
			// The hop to gs stays in the process: compressing it only costs CPU.
			vanguard.WithNoTargetCompression(),
			vanguard.WithMaxMessageBufferBytes(maxMessageBytes),
		),
	}
	if o.Page != nil {
		opts = append(opts, vanguard.WithUnknownHandler(o.Page))
	}
	t, err := vanguardgrpc.NewTranscoder(gs, opts...)
	if err != nil {
		return nil, fmt.Errorf("browser protocols: %w", err)
	}
	var h http.Handler = t
	if o.Videos != nil {
		h = withVideos(t, o.Videos)
	}
	if len(o.CORSOrigins) == 0 {
		return h, nil
	}
	return withCORS(h, o.CORSOrigins), nil
}

// withCORS answers preflight requests from allowed origins and marks their
// actual requests readable, with the headers the Connect and gRPC-Web
// protocols need (connectrpc.com/cors keeps that list). Requests from other
// origins get no CORS headers, so the browser withholds the answer.
func withCORS(next http.Handler, origins []string) http.Handler {
	anyOrigin := slices.Contains(origins, "*")
	methods := strings.Join(cors.AllowedMethods(), ", ")
	// W3C trace context too, so a traced page's calls join its trace; Range
	// and If-None-Match for reading a video in parts from a script.
	allowed := strings.Join(append(cors.AllowedHeaders(), "Authorization", "Traceparent", "Tracestate", "Range", "If-None-Match"), ", ")
	exposed := strings.Join(append(cors.ExposedHeaders(), "Content-Range", "Accept-Ranges", "ETag"), ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !(anyOrigin || slices.Contains(origins, origin)) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", allowed)
			h.Set("Access-Control-Max-Age", strconv.Itoa(2*60*60))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", exposed)
		next.ServeHTTP(w, r)
	})
}
