package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/lease/etcdlease"
)

// openLeaseStore builds the registry --lease-store names, reporting to obs.
// close releases it and anything it holds (the etcd client).
func openLeaseStore(ctx context.Context, cfg config, obs lease.Observer) (store lease.Registry, closeFn func(), err error) {
	lc := lease.Config{Capacity: cfg.capacity, TTL: cfg.leaseTTL, MaxAge: cfg.leaseMaxAge, MaxWaiting: cfg.leaseQueueMax, Observer: obs}
	switch cfg.leaseStore {
	case "memory":
		m := lease.NewMemory(lc)
		return m, func() { _ = m.Close() }, nil
	case "etcd":
		tlsCfg, err := etcdTLS(cfg)
		if err != nil {
			return nil, nil, err
		}
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   strings.Split(cfg.etcdEndpoints, ","),
			DialTimeout: cfg.etcdDialTimeout,
			TLS:         tlsCfg,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("etcd client: %w", err)
		}
		reg, err := etcdlease.New(ctx, cli, lc, cfg.etcdPrefix, etcdlease.WithOpTimeout(cfg.etcdDialTimeout))
		if err != nil {
			_ = cli.Close()
			return nil, nil, fmt.Errorf("etcd lease store at %s: %w", cfg.etcdEndpoints, err)
		}
		return reg, func() { _ = reg.Close(); _ = cli.Close() }, nil
	}
	return nil, nil, fmt.Errorf("--lease-store must be memory or etcd, got %q", cfg.leaseStore)
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
