// Command server runs the whirl gRPC service.
//
//	go run ./server --addr :50051 --capacity 5
//
// Every flag can also be set through the WHIRL_* variable named after it
// (--lease-ttl → WHIRL_LEASE_TTL); flags win over variables.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/whirl-dev/whirl/internal/buildinfo"
	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/ffmpeg"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/metrics"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run serves until ctx ends, then shuts down gracefully. It returns the exit
// code: 0 after a clean shutdown, 2 for bad flags, 1 for anything else.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "whirl-server:", err)
		return 2
	}
	if cfg.version {
		printVersion(ctx, stdout, cfg.ffmpeg)
		return 0
	}
	logger, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "whirl-server:", err)
		return 2
	}
	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("server failed", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg config, logger *slog.Logger) error {
	build := buildinfo.Read()
	tr, err := tracing.Setup(ctx, os.LookupEnv, "whirl-server", build.Version)
	if err != nil {
		return err
	}
	if tr.Enabled() {
		logger = slog.New(tracing.LogHandler(logger.Handler()))
		defer func() {
			// Spans still buffered go out before exit, within a bound.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tr.Shutdown(ctx); err != nil {
				logger.Warn("trace export at exit", "err", err)
			}
		}()
	}
	token, err := newAdminToken(cfg)
	if err != nil {
		return err
	}
	m := metrics.New()
	leases, closeLeases, err := openLeaseStore(ctx, cfg, m)
	if err != nil {
		return err
	}
	defer closeLeases()

	tc, err := tlsConfig(cfg)
	if err != nil {
		return err
	}
	var creds []grpc.ServerOption
	if tc != nil {
		creds = append(creds, grpc.Creds(credentials.NewTLS(tc)))
	}
	lis, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	ffmpegVersion, encoderErr := checkFFmpeg(ctx, cfg.ffmpeg, logger)
	release := "none"
	if encoderErr == nil {
		release = releaseOf(ffmpegVersion)
	}
	m.SetBuildInfo(metrics.Build{Version: build.Version, Revision: build.Revision, GoVersion: build.GoVersion, FFmpeg: release})
	videoCache := cache.Open(cfg.cacheDir, cfg.cacheMaxBytes, logger, m)
	closeShared, err := openSharedCache(ctx, cfg.sharedCache, videoCache, cfg.shutdownGrace, logger, m)
	if err != nil {
		_ = lis.Close()
		return err
	}
	defer closeShared()
	svcCfg := service.Config{
		Cache:                 videoCache,
		FFmpegVersion:         ffmpegVersion,
		Leases:                leases,
		AdminTokenFunc:        token.get,
		Logger:                logger,
		Encode:                encode.Options{FFmpegPath: cfg.ffmpeg, Nice: cfg.ffmpegNice},
		EncoderErr:            encoderErr,
		SpareEncoder:          encoderErr == nil,
		RenderSlots:           cfg.renderSlots,
		RenderWorkers:         cfg.renderWorkers,
		EncodeParallelism:     cfg.encodeParallel,
		MaxPixelFrames:        cfg.maxPixelFrames,
		Observer:              m,
		GRPCMetrics:           m.GRPC,
		AcquireRate:           cfg.acquireRate,
		AcquireBurst:          cfg.acquireBurst,
		AcquireInFlight:       cfg.acquireWaiting,
		ShutdownGrace:         cfg.shutdownGrace,
		OrphanGrace:           cfg.orphanGrace,
		TracerProvider:        tr.Provider,
		Propagator:            tr.Propagator,
		MaxConnectionAge:      cfg.maxConnAge,
		MaxConnectionAgeGrace: cfg.maxConnGrace,
		DisableReflection:     !cfg.reflection,
	}
	cfg.limits.apply(&svcCfg)
	srv := service.NewServer(svcCfg, creds...)
	if cfg.metricsAddr != "" {
		gauges := metrics.Gauges{Leases: leaseGauges(leases, cfg.capacity), Renders: srv.RenderStats}
		stopMetrics, err := serveMetrics(cfg.metricsAddr, m.Handler(gauges, cfg.pprof), logger)
		if err != nil {
			_ = lis.Close()
			return err
		}
		defer stopMetrics()
	}
	// Either listener failing stops both.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	token.reloadOnHangup(ctx, logger)
	waitHTTP := func() error { return nil }
	if cfg.httpAddr != "" {
		if waitHTTP, err = startHTTP(srv, cancel, cfg, tc, logger); err != nil {
			_ = lis.Close()
			return err
		}
	}
	logger.Info("serving", "version", build.Version, "revision", build.Revision, "ffmpeg", release, "addr", lis.Addr().String(), "tls", cfg.tlsCert != "", "lease_store", cfg.leaseStore, "capacity", cfg.capacity,
		"lease_ttl", cfg.leaseTTL, "lease_max_age", cfg.leaseMaxAge, "admin", token.get() != "",
		"cache_dir", cfg.cacheDir, "cache", videoCache.Enabled(), "shared_cache", cfg.sharedCache.url != "", "tracing", tr.Enabled())
	err = srv.Serve(ctx, lis)
	cancel()
	if httpErr := waitHTTP(); err == nil {
		err = httpErr
	}
	if err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// leaseGauges reads live leases, capacity and waiting calls for the metrics
// gauges; while the store is unreachable it reports capacity alone.
func leaseGauges(leases lease.Registry, capacity int) func() (active, capacity, waiting int) {
	return func() (int, int, int) {
		snap, err := leases.List(context.Background())
		if err != nil {
			return 0, capacity, 0
		}
		return len(snap.Leases), snap.Capacity, snap.Waiting
	}
}

// checkFFmpeg checks the ffmpeg at path and reads its build description
// (for video ids). A missing or broken ffmpeg must not stop lease service:
// renders are refused with a clear reason and health says NOT_SERVING for
// them.
func checkFFmpeg(ctx context.Context, path string, logger *slog.Logger) (version string, err error) {
	err = encode.Check(ctx, path)
	if err == nil {
		version, err = ffmpeg.Version(ctx, path)
	}
	if err != nil {
		logger.Error("renders disabled: ffmpeg unusable", "err", err)
	}
	return version, err
}

// tlsConfig builds the TLS settings both listeners share from the TLS flags
// (nil: plaintext).
func tlsConfig(cfg config) (*tls.Config, error) {
	if cfg.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.tlsClientCA != "" {
		pool, err := certPool("--tls-client-ca", cfg.tlsClientCA)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// certPool reads a PEM CA bundle named by flag.
func certPool(flag, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificates in %s", flag, path)
	}
	return pool, nil
}

// serveMetrics runs the metrics (and optional pprof) HTTP listener, apart
// from gRPC so that scraping and profiling never compete with clients.
func serveMetrics(addr string, h http.Handler, logger *slog.Logger) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(lis) }()
	logger.Info("serving metrics", "addr", lis.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, got %q", format)
}
