package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
)

// config is everything the server reads from flags and WHIRL_* variables.
type config struct {
	addr           string
	httpAddr       string
	corsOrigins    string
	capacity       int
	leaseTTL       time.Duration
	leaseMaxAge    time.Duration
	adminToken     string
	adminTokenFile string
	maxConnAge     time.Duration
	maxConnGrace   time.Duration
	reflection     bool
	version        bool
	logLevel       string
	logFormat      string
	shutdownGrace  time.Duration
	ffmpeg         string
	ffmpegNice     int
	renderSlots    int
	renderWorkers  int
	encodeParallel int
	maxPixelFrames int64
	metricsAddr    string
	pprof          bool
	acquireRate    float64
	acquireBurst   int
	acquireWaiting int
	leaseQueueMax  int
	orphanGrace    time.Duration
	limits         limitFlags
	tlsCert        string
	tlsKey         string
	tlsClientCA    string
	cacheDir       string
	cacheMaxBytes  int64
	sharedCache    sharedCacheFlags

	leaseStore      string
	etcdEndpoints   string
	etcdDialTimeout time.Duration
	etcdPrefix      string
	etcdCA          string
	etcdCert        string
	etcdKey         string
}

// envName is the environment variable that backs a flag: --lease-ttl reads
// WHIRL_LEASE_TTL when the flag is not given.
func envName(flagName string) string {
	return "WHIRL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func newFlagSet(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("whirl-server", flag.ContinueOnError)
	fs.StringVar(&cfg.addr, "addr", ":50051", "gRPC listen address")
	fs.StringVar(&cfg.httpAddr, "http-addr", ":8080", "HTTP listen address for browsers: Connect and gRPC-Web for every RPC, and the page at / (HTTP/1.1 and h2c, or TLS with --tls-cert; empty: off)")
	fs.StringVar(&cfg.corsOrigins, "cors-origins", "", "comma-separated origins (https://app.example.com, or *) whose pages may call the HTTP listener's RPCs (empty: same origin only)")
	fs.IntVar(&cfg.capacity, "capacity", lease.DefaultCapacity, "maximum number of live leases")
	fs.DurationVar(&cfg.leaseTTL, "lease-ttl", lease.DefaultTTL, "sliding lease TTL: each acquire, renew or render pushes expiry this far out")
	fs.DurationVar(&cfg.leaseMaxAge, "lease-max-age", lease.DefaultMaxAge, "maximum total life of a lease; renewals past it are refused")
	fs.StringVar(&cfg.leaseStore, "lease-store", "memory", "where leases live: memory (this process) or etcd (shared by replicas)")
	fs.StringVar(&cfg.etcdEndpoints, "etcd-endpoints", "http://127.0.0.1:2379", "comma-separated etcd endpoints (--lease-store=etcd)")
	fs.DurationVar(&cfg.etcdDialTimeout, "etcd-timeout", 2*time.Second, "etcd dial timeout and per-operation timeout; past it lease calls fail UNAVAILABLE")
	fs.StringVar(&cfg.etcdPrefix, "etcd-prefix", "/whirl/leases", "etcd key prefix of the lease pool; replicas sharing it share the limit")
	fs.StringVar(&cfg.etcdCA, "etcd-ca", "", "PEM CA bundle to verify etcd's TLS certificate")
	fs.StringVar(&cfg.etcdCert, "etcd-cert", "", "PEM client certificate for etcd (with --etcd-key)")
	fs.StringVar(&cfg.etcdKey, "etcd-key", "", "PEM client key for etcd")
	fs.StringVar(&cfg.adminToken, "admin-token", "", "bearer token for LeaseAdminService (empty: admin RPCs refused)")
	fs.StringVar(&cfg.adminTokenFile, "admin-token-file", "", "file holding the admin bearer token, instead of --admin-token (kept out of the process list); read at start and again on SIGHUP")
	fs.DurationVar(&cfg.maxConnAge, "max-connection-age", 5*time.Minute, "close each client connection this long after it opened (GOAWAY; clients reconnect, reaching replicas added since; 0: never)")
	fs.DurationVar(&cfg.maxConnGrace, "max-connection-age-grace", 10*time.Minute, "how long calls running on a connection past --max-connection-age may take to finish before it is closed")
	fs.BoolVar(&cfg.reflection, "reflection", true, "serve gRPC server reflection (grpcurl, Postman list the services without the .proto)")
	fs.BoolVar(&cfg.version, "version", false, "print the build (module version, VCS revision, Go release) and the ffmpeg found, then exit")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&cfg.shutdownGrace, "shutdown-grace", 30*time.Second, "on SIGTERM, how long running calls may take before they are cut")
	fs.StringVar(&cfg.ffmpeg, "ffmpeg", encode.DefaultFFmpegPath, "ffmpeg binary (path, or name looked up in PATH); must have libx264")
	fs.IntVar(&cfg.ffmpegNice, "ffmpeg-nice", encode.DefaultNice, "niceness ffmpeg runs at above the server's, 0-19 (Linux): encoding yields the CPU to RPC handling")
	// GOMAXPROCS rather than NumCPU: the CPUs this process may use,
	// a container's CPU limit included
	cpus := runtime.GOMAXPROCS(0)
	fs.IntVar(&cfg.renderSlots, "render-slots", cpus, "animations rendered at once; more wait in line")
	fs.IntVar(&cfg.renderWorkers, "render-workers", cpus, "goroutines drawing frames for each animation being encoded, shared out among its spans that run at once")
	fs.IntVar(&cfg.encodeParallel, "encode-parallelism", cpus, "span encoders (ffmpeg processes) running at once across all animations; one animation uses as many as are free, at most one per span (a span holds at most 5 s of video; 1: one span at a time)")
	fs.Int64Var(&cfg.maxPixelFrames, "max-pixel-frames", service.DefaultMaxPixelFrames, "largest width×height×frames one animation may ask for")
	fs.Float64Var(&cfg.acquireRate, "acquire-rate", 20, "AcquireLease calls allowed per second per client (see --client-key; 0: unlimited)")
	fs.IntVar(&cfg.acquireBurst, "acquire-burst", 40, "burst of AcquireLease calls allowed per client above --acquire-rate")
	fs.IntVar(&cfg.acquireWaiting, "acquire-inflight", 8, "AcquireLease calls a client may have under way at once, waiting ones included (0: unlimited)")
	fs.IntVar(&cfg.leaseQueueMax, "lease-queue-max", lease.DefaultMaxWaiting, "AcquireLease calls that may wait for a slot (with wait set) at once; past it they are refused at once (etcd: across replicas)")
	fs.DurationVar(&cfg.orphanGrace, "orphan-grace", service.DefaultOrphanGrace, "how long a render goes on after its last reader left, while its lease lives, so a resumed stream joins it (0: cancel at once)")
	cfg.limits.register(fs)
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "PEM certificate for TLS (with --tls-key; empty: plaintext)")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "PEM private key for TLS")
	fs.StringVar(&cfg.tlsClientCA, "tls-client-ca", "", "PEM CA bundle: when set, clients must present a certificate it signed (mutual TLS)")
	fs.StringVar(&cfg.cacheDir, "cache-dir", defaultCacheDir(), "directory of the cache of finished videos (empty: no cache)")
	fs.Int64Var(&cfg.cacheMaxBytes, "cache-max-bytes", 1<<30, "bytes of finished videos the cache keeps, least recently used evicted first (0: no cache)")
	cfg.sharedCache.register(fs)
	fs.StringVar(&cfg.metricsAddr, "metrics-addr", "", "HTTP listen address for Prometheus /metrics (empty: off)")
	fs.BoolVar(&cfg.pprof, "pprof", false, "also serve net/http/pprof under /debug/pprof/ on the metrics listener")
	return fs
}

// defaultCacheDir is whirl's directory in the user's cache directory
// ($XDG_CACHE_HOME or ~/.cache on Linux); empty when there is none.
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "whirl")
}

// parseConfig applies WHIRL_* variables first, then flags, then checks bounds.
func parseConfig(args []string, lookupEnv func(string) (string, bool)) (config, error) {
	var cfg config
	fs := newFlagSet(&cfg)
	fs.SetOutput(os.Stderr)
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" {
			return // an action, not a setting
		}
		if v, ok := lookupEnv(envName(f.Name)); ok && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return cfg, cfg.check()
}

func (c config) check() error {
	switch {
	case c.capacity < 1 || c.capacity > 10000:
		return fmt.Errorf("--capacity must be 1-10000, got %d", c.capacity)
	case c.leaseTTL < time.Second:
		return fmt.Errorf("--lease-ttl must be at least 1s, got %s", c.leaseTTL)
	case c.leaseMaxAge < c.leaseTTL:
		return fmt.Errorf("--lease-max-age (%s) must be at least --lease-ttl (%s)", c.leaseMaxAge, c.leaseTTL)
	case c.ffmpegNice < 0 || c.ffmpegNice > encode.MaxNice:
		return fmt.Errorf("--ffmpeg-nice must be 0-%d, got %d", encode.MaxNice, c.ffmpegNice)
	case c.renderSlots < 1 || c.renderSlots > 1024:
		return fmt.Errorf("--render-slots must be 1-1024, got %d", c.renderSlots)
	case c.renderWorkers < 1 || c.renderWorkers > 256:
		return fmt.Errorf("--render-workers must be 1-256, got %d", c.renderWorkers)
	case c.encodeParallel < 1 || c.encodeParallel > 1024:
		return fmt.Errorf("--encode-parallelism must be 1-1024, got %d", c.encodeParallel)
	case c.maxPixelFrames < 64*64:
		return fmt.Errorf("--max-pixel-frames must be at least %d", 64*64)
	case c.acquireRate < 0 || c.acquireBurst < 1:
		return fmt.Errorf("--acquire-rate must be >= 0 and --acquire-burst >= 1")
	case c.acquireWaiting < 0:
		return fmt.Errorf("--acquire-inflight must be >= 0, got %d", c.acquireWaiting)
	case c.leaseQueueMax < 1 || c.leaseQueueMax > 100000:
		return fmt.Errorf("--lease-queue-max must be 1-100000, got %d", c.leaseQueueMax)
	case c.orphanGrace < 0 || c.orphanGrace > 10*time.Minute:
		return fmt.Errorf("--orphan-grace must be 0-10m, got %s", c.orphanGrace)
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return fmt.Errorf("--tls-cert and --tls-key go together")
	case c.tlsClientCA != "" && c.tlsCert == "":
		return fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key")
	case c.leaseStore != "memory" && c.leaseStore != "etcd":
		return fmt.Errorf("--lease-store must be memory or etcd, got %q", c.leaseStore)
	case c.etcdDialTimeout < 100*time.Millisecond:
		return fmt.Errorf("--etcd-timeout must be at least 100ms")
	case (c.etcdCert == "") != (c.etcdKey == ""):
		return fmt.Errorf("--etcd-cert and --etcd-key go together")
	case c.corsOrigins != "" && c.httpAddr == "":
		return fmt.Errorf("--cors-origins needs --http-addr")
	case c.pprof && c.metricsAddr == "":
		return fmt.Errorf("--pprof needs --metrics-addr")
	case c.cacheMaxBytes < 0:
		return fmt.Errorf("--cache-max-bytes must not be negative, got %d", c.cacheMaxBytes)
	case c.shutdownGrace < 0:
		return fmt.Errorf("--shutdown-grace must not be negative")
	case c.adminToken != "" && c.adminTokenFile != "":
		return fmt.Errorf("--admin-token and --admin-token-file are alternatives: give one")
	case c.maxConnAge < 0 || c.maxConnGrace < 0:
		return fmt.Errorf("--max-connection-age and --max-connection-age-grace must not be negative")
	}
	if err := checkOrigins(c.corsOrigins); err != nil {
		return err
	}
	if err := c.sharedCache.check(); err != nil {
		return err
	}
	return c.limits.check()
}

// checkOrigins accepts "*" or origins as browsers send them: an http or
// https scheme and a host, with no path, query or trailing slash.
func checkOrigins(list string) error {
	for _, o := range splitList(list) {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("--cors-origins: %q is not an origin like https://app.example.com", o)
		}
	}
	return nil
}
