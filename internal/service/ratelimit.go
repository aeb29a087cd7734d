package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

// maxTrackedPeers bounds the limiter's memory: past it, idle peers are
// forgotten first.
const maxTrackedPeers = 10000

// peerLimiter is a token bucket per client IP address, for the
// go-grpc-middleware ratelimit interceptor. It stops one client from
// hammering AcquireLease; lease capacity is a separate, global limit.
type peerLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu    sync.Mutex
	peers map[string]*peerBucket
}

type peerBucket struct {
	limiter  *rate.Limiter
	lastSeen time.Time
}

func newPeerLimiter(perSecond float64, burst int) *peerLimiter {
	return &peerLimiter{limit: rate.Limit(perSecond), burst: burst, now: time.Now, peers: map[string]*peerBucket{}}
}

// rateLimited is where peerLimiter.Limit leaves its verdict on a refused
// call, found through the call's context.
type rateLimited struct {
	delay time.Duration
	msg   string
}

type rateLimitedKey struct{}

// acquireRateLimit enforces l through go-grpc-middleware's ratelimit
// interceptor. That interceptor replaces the limiter's error with a bare
// status of its own, so the limiter also leaves its verdict in the context
// and the refusal goes out like a full lease pool's: RetryInfo, QuotaFailure
// and the retry-pushback trailer.
func acquireRateLimit(l *peerLimiter) grpc.UnaryServerInterceptor {
	limit := ratelimit.UnaryServerInterceptor(l)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		var verdict rateLimited
		resp, err := limit(context.WithValue(ctx, rateLimitedKey{}, &verdict), req, info, handler)
		if verdict.delay > 0 {
			return nil, refusal(ctx, verdict.msg, verdict.delay, "acquire_rate",
				fmt.Sprintf("at most %g AcquireLease calls per second per client address, bursts of %d", float64(l.limit), l.burst))
		}
		return resp, err
	}
}

// Limit implements ratelimit.Limiter.
func (l *peerLimiter) Limit(ctx context.Context) error {
	now := l.now()
	b := l.bucket(peerIP(ctx), now)
	r := b.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay <= 0 {
		return nil
	}
	r.CancelAt(now)
	msg := fmt.Sprintf("AcquireLease rate limit is %g/s per client; retry in %s", float64(l.limit), delay.Round(time.Millisecond))
	if v, ok := ctx.Value(rateLimitedKey{}).(*rateLimited); ok {
		v.delay, v.msg = delay, msg
	}
	return errors.New(msg)
}

func (l *peerLimiter) bucket(ip string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.peers[ip]; ok {
		b.lastSeen = now
		return b.limiter
	}
	if len(l.peers) >= maxTrackedPeers {
		l.forgetIdle(now)
	}
	b := &peerBucket{limiter: rate.NewLimiter(l.limit, l.burst), lastSeen: now}
	l.peers[ip] = b
	return b.limiter
}

// forgetIdle drops peers whose bucket has refilled (they lose nothing), or,
// if none has, the least recently seen half.
func (l *peerLimiter) forgetIdle(now time.Time) {
	refill := time.Duration(float64(l.burst) / float64(l.limit) * float64(time.Second))
	for ip, b := range l.peers {
		if now.Sub(b.lastSeen) > refill {
			delete(l.peers, ip)
		}
	}
	if len(l.peers) < maxTrackedPeers {
		return
	}
	var cutoff time.Time
	for _, b := range l.peers {
		if cutoff.IsZero() || b.lastSeen.Before(cutoff) {
			cutoff = b.lastSeen
		}
	}
	cutoff = cutoff.Add(now.Sub(cutoff) / 2)
	for ip, b := range l.peers {
		if b.lastSeen.Before(cutoff) {
			delete(l.peers, ip)
		}
	}
}

func peerIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return host
	}
	return p.Addr.String()
}
