package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/whirl-dev/whirl/internal/clock"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/lease/etcdlease"
	"github.com/whirl-dev/whirl/internal/service"
)

// leaseStore is a registry the server can also observe.
type leaseStore interface {
	lease.Registry
	SetObserver(lease.Observer)
}

// openLeaseStore builds the registry --lease-store names. close releases it
// and anything it holds (the etcd client).
func openLeaseStore(ctx context.Context, cfg config) (store leaseStore, healthy func(context.Context) error, closeFn func(), err error) {
	lc := lease.Config{Capacity: cfg.capacity, TTL: cfg.leaseTTL, MaxAge: cfg.leaseMaxAge}
	switch cfg.leaseStore {
	case "memory":
		m := lease.NewMemory(lc, clock.Real{})
		return m, nil, func() { _ = m.Close() }, nil
	case "etcd":
		tlsCfg, err := etcdTLS(cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   strings.Split(cfg.etcdEndpoints, ","),
			DialTimeout: cfg.etcdDialTimeout,
			TLS:         tlsCfg,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("etcd client: %w", err)
		}
		reg, err := etcdlease.New(ctx, cli, lc, cfg.etcdPrefix, etcdlease.WithOpTimeout(cfg.etcdDialTimeout))
		if err != nil {
			_ = cli.Close()
			return nil, nil, nil, fmt.Errorf("etcd lease store at %s: %w", cfg.etcdEndpoints, err)
		}
		return reg, reg.Healthy, func() { _ = reg.Close(); _ = cli.Close() }, nil
	}
	return nil, nil, nil, fmt.Errorf("--lease-store must be memory or etcd, got %q", cfg.leaseStore)
}

func etcdTLS(cfg config) (*tls.Config, error) {
	if cfg.etcdCA == "" && cfg.etcdCert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.etcdCA != "" {
		pool, err := certPool("--etcd-ca", cfg.etcdCA)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if cfg.etcdCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.etcdCert, cfg.etcdKey)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert/--etcd-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// watchLeaseHealth keeps the whirl.leases health entry in step with the
// store until ctx ends. Lease RPCs fail UNAVAILABLE on their own while the
// store is down; this tells load balancers and operators too.
func watchLeaseHealth(ctx context.Context, srv *service.Server, healthy func(context.Context) error, every time.Duration, logger *slog.Logger) {
	last := healthpb.HealthCheckResponse_SERVING
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := healthpb.HealthCheckResponse_SERVING
		if err := healthy(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			now = healthpb.HealthCheckResponse_NOT_SERVING
			if now != last {
				logger.Error("lease store unreachable", "err", err)
			}
		} else if now != last {
			logger.Info("lease store reachable again")
		}
		if now != last {
			srv.Health.SetServingStatus(service.HealthLeases, now)
			last = now
		}
	}
}
