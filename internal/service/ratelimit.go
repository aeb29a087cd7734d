package service

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

// maxTrackedClients bounds each clientRate's memory: past it, the least
// recently seen client is forgotten.
const maxTrackedClients = 10000

// clientKey names the client a call counts against. peerIP is the one the
// server uses; another (a header, say) only needs this signature.
type clientKey func(ctx context.Context) string

// clientRate is a token bucket per client for one kind of call. Clients
// live in an LRU: one forgotten to make room comes back with a full
// bucket, which costs at most one burst, and only the client that has been
// quiet the longest.
type clientRate struct {
	// quota names the limit in QuotaFailure; what ("AcquireLease calls")
	// says what it counts.
	quota, what string
	limit       rate.Limit
	burst       int

	mu      sync.Mutex
	clients *simplelru.LRU[string, *rate.Limiter]
}

func newClientRate(quota, what string, perSecond float64, burst, maxClients int) *clientRate {
	clients, err := simplelru.NewLRU[string, *rate.Limiter](maxClients, nil)
	if err != nil {
		// Only a size below 1 fails; every caller passes a constant.
		panic(err)
	}
	return &clientRate{quota: quota, what: what, limit: rate.Limit(perSecond), burst: max(burst, 1), clients: clients}
}

// take spends one of key's tokens at now, or, if none is left, returns how
// long until one is and spends nothing.
func (r *clientRate) take(key string, now time.Time) (wait time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.clients.Get(key)
	if !ok {
		b = rate.NewLimiter(r.limit, r.burst)
		r.clients.Add(key, b)
	}
	res := b.ReserveN(now, 1)
	if wait = res.DelayFrom(now); wait > 0 {
		res.CancelAt(now)
	}
	return wait
}

// refusal is the RESOURCE_EXHAUSTED status for a call that must wait.
func (r *clientRate) refusal(ctx context.Context, wait time.Duration) error {
	return refusal(ctx, fmt.Sprintf("rate limit of %g %s per second per client", float64(r.limit), r.what), wait, r.quota,
		fmt.Sprintf("at most %g %s per second per client, bursts of %d", float64(r.limit), r.what, r.burst))
}

// rateLimits refuses calls to the methods it names once their client has
// spent its tokens; other methods pass untouched. It is a plain
// interceptor on x/time/rate so that the refusal says when to come back.
type rateLimits struct {
	key clientKey
	// byMethod maps full method names ("/whirl.v1.AnimationService/
	// AcquireLease") to their limit.
	byMethod map[string]*clientRate
}

func (l rateLimits) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if r := l.byMethod[info.FullMethod]; r != nil {
		if wait := r.take(l.key(ctx), time.Now()); wait > 0 {
			return nil, r.refusal(ctx, wait)
		}
	}
	return handler(ctx, req)
}

// peerIP keys a call by the address it came from, without the port.
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
