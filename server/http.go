package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/whirl-dev/whirl/client/web"
	"github.com/whirl-dev/whirl/internal/browser"
	"github.com/whirl-dev/whirl/internal/service"
)

// startHTTP serves Connect, gRPC-Web and the page on cfg.httpAddr in front
// of srv's gRPC server; if the listener fails it calls fail. At shutdown srv
// first lets it drain (DrainFirst): it stops accepting connections and its
// calls run on, for up to the grace, before the gRPC server stops; what is
// left then is cut. wait returns once it has stopped, with the listener's
// error if it failed.
func startHTTP(srv *service.Server, fail func(), cfg config, tc *tls.Config, logger *slog.Logger) (wait func() error, err error) {
	h, err := browser.NewHandler(srv.GRPCServer(), browser.Options{Page: web.Handler(), CORSOrigins: splitList(cfg.corsOrigins), Videos: videoFiles{srv}})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr: %w", err)
	}
	hs := browser.NewServer(h, tc)
	srv.DrainFirst(hs.Shutdown)
	served := make(chan error, 1)
	go func() {
		err := hs.Serve(lis)
		if err != nil {
			fail()
		}
		served <- err
	}()
	logger.Info("serving http", "protocols", "connect, grpc-web, page at /, videos at "+browser.VideosPath, "addr", lis.Addr().String(), "tls", tc != nil, "cors_origins", cfg.corsOrigins)
	return func() error { return <-served }, nil
}

// splitList reads a comma-separated flag value, ignoring blanks.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
