package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/whirl-dev/whirl/internal/browser"
	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/service"
)

// videoFiles serves the finished videos of srv's cache tiers over HTTP.
type videoFiles struct{ srv *service.Server }

func (v videoFiles) OpenVideo(id string) (browser.Video, bool) {
	f, facts, ok := v.srv.FinishedVideo(id)
	if !ok {
		return browser.Video{}, false
	}
	return browser.Video{File: f.File, SHA256: f.SHA256, Facts: facts}, true
}

// Admit applies the server's GetVideo limits to an HTTP read, keyed as
// the gRPC calls are: the client's address, or the trusted header.
func (v videoFiles) Admit(r *http.Request) (func(), time.Duration, bool) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	var header string
	if name := v.srv.ClientHeader(); name != "" {
		header = r.Header.Get(name)
	}
	return v.srv.AdmitVideoRead(ip, header)
}

// sharedCacheFlags configure the shared tier of the video cache.
type sharedCacheFlags struct {
	url     string
	uploads int
}

func (f *sharedCacheFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "shared-cache-url", "", "bucket of finished videos shared by replicas, behind the local cache: s3://BUCKET?region=R&endpoint=URL&use_path_style=true&prefix=videos/ or file:///PATH (empty: off); credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE...), never the URL")
	fs.IntVar(&f.uploads, "shared-cache-uploads", 2, "uploads to the shared cache running at once")
}

func (f sharedCacheFlags) check() error {
	if f.uploads < 1 || f.uploads > 64 {
		return fmt.Errorf("--shared-cache-uploads must be 1-64, got %d", f.uploads)
	}
	if f.url == "" {
		return nil
	}
	u, err := url.Parse(f.url)
	switch {
	case err != nil || (u.Scheme != "s3" && u.Scheme != "file"):
		return fmt.Errorf("--shared-cache-url must be an s3:// or file:// URL, got %q", f.url)
	case u.User != nil || u.Query().Has("access_key") || u.Query().Has("secret_key"):
		return errors.New("--shared-cache-url must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile) instead")
	}
	return nil
}

// openSharedCache opens the shared tier the flags name, if any, and makes
// it store's second tier; closeTier lets queued uploads finish for up to
// grace.
func openSharedCache(ctx context.Context, f sharedCacheFlags, store *cache.Store, grace time.Duration, logger *slog.Logger, events cache.SharedEvents) (closeTier func(), err error) {
	if f.url == "" {
		return func() {}, nil
	}
	tier, err := cache.OpenSharedTier(ctx, f.url, cache.SharedTierOptions{Uploads: f.uploads, Logger: logger, Events: events})
	if err != nil {
		return nil, fmt.Errorf("--shared-cache-url: %w", err)
	}
	store.SetShared(tier)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		tier.Close(ctx)
	}, nil
}
