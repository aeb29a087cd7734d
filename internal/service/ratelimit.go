package service

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
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

// Limit implements ratelimit.Limiter. A refused call also gets the
// grpc-retry-pushback-ms trailer, the one hint that survives the
// interceptor (it rewrites the status and drops details).
func (l *peerLimiter) Limit(ctx context.Context) error {
	now := l.now()
	b := l.bucket(peerIP(ctx), now)
	r := b.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		_ = grpc.SetTrailer(ctx, metadata.Pairs(retryPushbackTrailer, strconv.FormatInt(max(delay.Milliseconds(), 1), 10)))
		return fmt.Errorf("AcquireLease rate limit is %g/s per client; retry in %s", float64(l.limit), delay.Round(time.Millisecond))
	}
	return nil
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
