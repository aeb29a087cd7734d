package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/whirl-dev/whirl/client/web"
	"github.com/whirl-dev/whirl/internal/browser"
)

// startHTTP serves Connect, gRPC-Web and the page on cfg.httpAddr in front
// of gs until ctx ends; if the listener fails it calls fail. When ctx ends
// it stops accepting connections at once, while the gRPC server drains the
// calls that came through here (for up to the grace) and cuts the rest;
// wait returns once it has stopped, with the listener's error if it failed.
func startHTTP(ctx context.Context, fail func(), cfg config, gs *grpc.Server, tc *tls.Config, logger *slog.Logger) (wait func() error, err error) {
	h, err := browser.NewHandler(gs, browser.Options{Page: web.Handler(), CORSOrigins: splitList(cfg.corsOrigins)})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr: %w", err)
	}
	hs := browser.NewServer(h, tc)
	served := make(chan error, 1)
	go func() {
		err := hs.Serve(lis)
		if err != nil {
			fail()
		}
		served <- err
	}()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		// The gRPC server cuts calls left at the end of the grace; a second
		// more lets their connections go idle.
		sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownGrace+time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	logger.Info("serving http", "protocols", "connect, grpc-web, page at /", "addr", lis.Addr().String(), "tls", tc != nil, "cors_origins", cfg.corsOrigins)
	return func() error {
		<-stopped
		return <-served
	}, nil
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
