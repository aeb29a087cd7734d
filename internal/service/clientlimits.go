package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// maxTrackedClients bounds each callLimit's memory: past it, the least
// recently seen client is forgotten.
const maxTrackedClients = 10000

// maxClientKey bounds the bytes a client key keeps in memory; a longer
// header value is kept as its SHA-256.
const maxClientKey = 128

// ClientLimits bound one kind of call for each client. A zero field means
// no limit.
type ClientLimits struct {
	// Rate is calls per second, with bursts of Burst (at least 1).
	Rate  float64
	Burst int
	// InFlight is how many calls a client may have under way at once,
	// queued ones included.
	InFlight int
}

func (l ClientLimits) any() bool { return l.Rate > 0 || l.InFlight > 0 }

// clientKey names the client a call counts against.
type clientKey func(ctx context.Context) string

// callLimit is a token bucket and an in-flight count per client for one
// kind of call. Clients live in an LRU: one forgotten to make room comes
// back with a full bucket, which costs at most one burst, and only the
// client that has been quiet the longest. A client forgotten while it has
// calls in flight moves to busy until they end, so its count is never lost.
type callLimit struct {
	// quota prefixes the QuotaFailure subjects (quota_rate,
	// quota_inflight); what ("AcquireLease calls") says what is counted.
	quota, what string
	limit       rate.Limit
	burst       int
	maxInFlight int

	mu      sync.Mutex
	clients *simplelru.LRU[string, *clientState]
	busy    map[string]*clientState
	// meanCall is a moving mean of how long a call takes, the retry hint of
	// an in-flight refusal.
	meanCall time.Duration
}

type clientState struct {
	bucket   *rate.Limiter
	inFlight int
}

func newCallLimit(quota, what string, l ClientLimits, maxClients int) *callLimit {
	c := &callLimit{quota: quota, what: what, limit: rate.Limit(l.Rate), burst: max(l.Burst, 1), maxInFlight: l.InFlight,
		busy: map[string]*clientState{}}
	if l.Rate <= 0 {
		c.limit = rate.Inf
	}
	clients, err := simplelru.NewLRU(maxClients, func(key string, s *clientState) {
		if s.inFlight > 0 {
			c.busy[key] = s
		}
	})
	if err != nil {
		// Only a size below 1 fails; every caller passes a constant.
		panic(err)
	}
	c.clients = clients
	return c
}

// take admits one of key's calls at now: it counts the call in flight and
// spends a token, and the caller hands the state returned to done when the
// call ends. A client at its in-flight cap gets full; one out of tokens
// gets how long until it has one. A refusal spends and counts nothing.
func (l *callLimit) take(key string, now time.Time) (s *clientState, wait time.Duration, full bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.busy[key]
	if !ok {
		if s, ok = l.clients.Get(key); !ok {
			s = &clientState{bucket: rate.NewLimiter(l.limit, l.burst)}
			l.clients.Add(key, s)
		}
	}
	if l.maxInFlight > 0 && s.inFlight >= l.maxInFlight {
		return nil, 0, true
	}
	res := s.bucket.ReserveN(now, 1)
	if wait = res.DelayFrom(now); wait > 0 {
		res.CancelAt(now)
		return nil, wait, false
	}
	s.inFlight++
	return s, 0, false
}

// done ends a call take admitted, which took d.
func (l *callLimit) done(key string, s *clientState, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s.inFlight--
	if s.inFlight == 0 && l.busy[key] == s {
		delete(l.busy, key)
	}
	if l.meanCall == 0 {
		l.meanCall = d
	} else {
		l.meanCall += (d - l.meanCall) / 8
	}
}

// rateRefusal is the RESOURCE_EXHAUSTED status for a client out of tokens.
func (l *callLimit) rateRefusal(ctx context.Context, wait time.Duration) error {
	return refusal(ctx, whirlv1.ErrorReason_CLIENT_RATE_LIMITED, fmt.Sprintf("rate limit of %g %s per second per client", float64(l.limit), l.what), wait, l.quota+"_rate",
		fmt.Sprintf("at most %g %s per second per client, bursts of %d", float64(l.limit), l.what, l.burst))
}

// inFlightRefusal is the RESOURCE_EXHAUSTED status for a client at its
// cap; it is told to come back after a typical call's time.
func (l *callLimit) inFlightRefusal(ctx context.Context) error {
	l.mu.Lock()
	hint := l.meanCall
	l.mu.Unlock()
	limit := fmt.Sprintf("%d %s in flight per client", l.maxInFlight, l.what)
	return refusal(ctx, whirlv1.ErrorReason_CLIENT_IN_FLIGHT_LIMITED, "limit of "+limit, hint, l.quota+"_inflight", "at most "+limit)
}

// clientLimits refuses calls to the methods it names once their client has
// spent its tokens or has too many under way; other methods pass
// untouched. It is a plain interceptor on x/time/rate so that the refusal
// says when to come back.
type clientLimits struct {
	key clientKey
	// byMethod maps full method names ("/whirl.v1.AnimationService/
	// AcquireLease") to their limit.
	byMethod map[string]*callLimit
}

// newClientLimits returns the per-client limits cfg asks for, or nil if it
// asks for none.
func newClientLimits(cfg Config) *clientLimits {
	l := &clientLimits{key: peerIP, byMethod: map[string]*callLimit{}}
	if cfg.ClientHeader != "" {
		l.key = headerKey(cfg.ClientHeader)
	}
	for method, c := range map[string]struct {
		quota, what string
		limits      ClientLimits
	}{
		whirlv1.AnimationService_AcquireLease_FullMethodName:  {"acquire", "AcquireLease calls", ClientLimits{Rate: cfg.AcquireRate, Burst: cfg.AcquireBurst, InFlight: cfg.AcquireInFlight}},
		whirlv1.AnimationService_RenderStill_FullMethodName:   {"still", "RenderStill calls", cfg.StillLimits},
		whirlv1.AnimationService_GenerateCurve_FullMethodName: {"curve", "GenerateCurve calls", cfg.CurveLimits},
		whirlv1.AnimationService_GetVideo_FullMethodName:      {"video", "GetVideo calls", cfg.VideoLimits},
	} {
		if c.limits.any() {
			l.byMethod[method] = newCallLimit(c.quota, c.what, c.limits, maxTrackedClients)
		}
	}
	if len(l.byMethod) == 0 {
		return nil
	}
	return l
}

func (l *clientLimits) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c := l.byMethod[info.FullMethod]
	if c == nil {
		return handler(ctx, req)
	}
	key, now := l.key(ctx), time.Now()
	s, wait, full := c.take(key, now)
	switch {
	case full:
		return nil, c.inFlightRefusal(ctx)
	case wait > 0:
		return nil, c.rateRefusal(ctx, wait)
	}
	defer func() { c.done(key, s, time.Since(now)) }()
	return handler(ctx, req)
}

// stream is unary's twin for streaming calls (GetVideo): a call counts in
// flight until its stream ends.
func (l *clientLimits) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	c := l.byMethod[info.FullMethod]
	if c == nil {
		return handler(srv, ss)
	}
	ctx := ss.Context()
	key, now := l.key(ctx), time.Now()
	s, wait, full := c.take(key, now)
	switch {
	case full:
		return c.inFlightRefusal(ctx)
	case wait > 0:
		return c.rateRefusal(ctx, wait)
	}
	defer func() { c.done(key, s, time.Since(now)) }()
	return handler(srv, ss)
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

// headerKey keys a call by the first value of the request header name, set
// by a trusted proxy in front of the server; a call without it counts
// against its peer's address. The prefixes keep the two kinds of key apart.
func headerKey(name string) clientKey {
	return func(ctx context.Context) string {
		md, _ := metadata.FromIncomingContext(ctx)
		var v string
		if vs := md.Get(name); len(vs) > 0 {
			v = vs[0]
		}
		return headerValueKey(v, peerIP(ctx))
	}
}

// headerValueKey is the key of a client whose trusted header has value v
// (empty: absent) and whose address is ip.
func headerValueKey(v, ip string) string {
	switch {
	case v == "":
		return "ip:" + ip
	case len(v) > maxClientKey:
		sum := sha256.Sum256([]byte(v))
		return "h#:" + hex.EncodeToString(sum[:])
	}
	return "h:" + v
}

// forMethod is the limit on a method, nil when there is none (or no
// limits at all).
func (l *clientLimits) forMethod(fullMethod string) *callLimit {
	if l == nil {
		return nil
	}
	return l.byMethod[fullMethod]
}
