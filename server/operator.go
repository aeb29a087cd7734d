package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/whirl-dev/whirl/internal/buildinfo"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/ffmpeg"
)

// printVersion writes what --version shows: the build, and the ffmpeg at
// path (its release, or why renders would be refused).
func printVersion(ctx context.Context, w io.Writer, path string) {
	b := buildinfo.Read()
	fmt.Fprintf(w, "whirl-server %s\nrevision: %s (%s)\ngo: %s\n", b.Version, b.Revision, b.Time, b.GoVersion)
	release, err := ffmpegRelease(ctx, path)
	if err != nil {
		fmt.Fprintf(w, "ffmpeg: not usable, renders would be refused: %v\n", err)
		return
	}
	fmt.Fprintf(w, "ffmpeg: %s\n", release)
}

// ffmpegRelease checks the ffmpeg at path as the server does and returns
// its release ("7.1.1").
func ffmpegRelease(ctx context.Context, path string) (string, error) {
	if err := encode.Check(ctx, path); err != nil {
		return "", err
	}
	v, err := ffmpeg.Version(ctx, path)
	if err != nil {
		return "", err
	}
	return releaseOf(v), nil
}

// releaseOf is the release in `ffmpeg -version`'s first line ("ffmpeg
// version 7.1.1 Copyright ..."), or "unknown".
func releaseOf(version string) string {
	if f := strings.Fields(version); len(f) >= 3 && f[1] == "version" {
		return f[2]
	}
	return "unknown"
}

// adminToken is the admin bearer token: --admin-token's, or the content of
// --admin-token-file, read at start and again on each SIGHUP, so the token
// can be rotated without a restart.
type adminToken struct {
	path    string
	current atomic.Pointer[string]
}

// newAdminToken reads the token cfg names.
func newAdminToken(cfg config) (*adminToken, error) {
	t := &adminToken{path: cfg.adminTokenFile}
	if t.path == "" {
		t.current.Store(&cfg.adminToken)
		return t, nil
	}
	return t, t.reload()
}

// get is the token now; empty refuses every admin call.
func (t *adminToken) get() string { return *t.current.Load() }

// reload reads the file again; on any error the token stays what it was.
func (t *adminToken) reload() error {
	b, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("--admin-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return errors.New("--admin-token-file: " + t.path + " is empty")
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return errors.New("--admin-token-file: " + t.path + " holds more than one word")
	}
	t.current.Store(&token)
	return nil
}

// reloadOnHangup re-reads the token file on every SIGHUP until ctx ends.
// Without a file a SIGHUP is logged and ignored: its default action would
// end the server at once, without draining.
func (t *adminToken) reloadOnHangup(ctx context.Context, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			if t.path == "" {
				logger.Info("SIGHUP ignored: no --admin-token-file to re-read")
				continue
			}
			if err := t.reload(); err != nil {
				logger.Error("admin token not reloaded; the previous one stays", "err", err)
				continue
			}
			logger.Info("admin token reloaded", "file", t.path)
		}
	}()
}
