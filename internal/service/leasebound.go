package service

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/lease"
)

// A render ends with its lease. Every RenderAnimation reader holds a pin on
// its own lease; a render runs while at least one reader (or an orphan,
// below) holds it. When a pin is lost (its lease released, revoked, or no
// longer provably alive) its call ends ABORTED, its reader leaves, and the
// pin is unpinned only once nothing that reader kept running still runs:
// the render's encoders have exited if it was the last one. So a slot is
// handed on only after the render that held it has stopped.
//
// A reader whose client goes away while the render is unfinished leaves an
// orphan: its pin and reader are kept for the orphan grace, so a client that
// reconnects and resumes with the same lease joins the render instead of
// starting over. The orphan ends at once when its lease is lost.

// DefaultOrphanGrace is how long a render whose last reader left goes on.
const DefaultOrphanGrace = 15 * time.Second

// ownership is what a RenderAnimation call holds: its pin and reader.
type ownership struct {
	pin *lease.Pin
	r   *cache.Reader
}

// release closes the reader and unpins once nothing it kept running runs.
func (o ownership) release() {
	<-o.r.Close()
	o.pin.Unpin()
}

// orphans are renders kept running after their last reader left, by lease.
type orphans struct {
	grace time.Duration

	mu      sync.Mutex
	byLease map[[sha256.Size]byte]*orphan
	closed  bool
	wg      sync.WaitGroup
}

type orphan struct {
	videoID string
	own     ownership
	// adopted is closed by the call that takes the orphan over, once its
	// own reader holds the render, so the orphan's reader may leave.
	adopted chan struct{}
}

func newOrphans(grace time.Duration) *orphans {
	return &orphans{grace: grace, byLease: map[[sha256.Size]byte]*orphan{}}
}

// keep holds own for the grace if its render is unfinished and its lease
// lives; otherwise (or with no grace) it releases own at once.
func (os *orphans) keep(token, videoID string, own ownership) {
	select {
	case <-own.r.Finished():
		own.release()
		return
	case <-own.pin.Lost():
		own.release()
		return
	default:
	}
	key := sha256.Sum256([]byte(token))
	os.mu.Lock()
	if os.grace <= 0 || os.closed || os.byLease[key] != nil {
		os.mu.Unlock()
		own.release()
		return
	}
	o := &orphan{videoID: videoID, own: own, adopted: make(chan struct{})}
	os.byLease[key] = o
	os.wg.Add(1)
	os.mu.Unlock()
	go os.watch(key, o)
}

// watch ends o when the grace passes, its lease is lost or its render
// finishes, unless a resuming call adopts it first.
func (os *orphans) watch(key [sha256.Size]byte, o *orphan) {
	defer os.wg.Done()
	t := time.NewTimer(os.grace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-o.own.pin.Lost():
	case <-o.own.r.Finished():
	case <-o.adopted:
	}
	os.mu.Lock()
	mine := os.byLease[key] == o
	if mine {
		delete(os.byLease, key)
	}
	os.mu.Unlock()
	if mine {
		o.own.release()
		return
	}
	// Adopted: the new call holds the pin; only the old reader leaves, once
	// the new one holds the render.
	<-o.adopted
	o.own.r.Close()
}

// adopt takes over the orphan of token's lease if it keeps videoID's render:
// the caller gets its pin and must call done once its own reader is open.
func (os *orphans) adopt(token, videoID string) (pin *lease.Pin, done func(), ok bool) {
	key := sha256.Sum256([]byte(token))
	os.mu.Lock()
	defer os.mu.Unlock()
	o := os.byLease[key]
	if o == nil || o.videoID != videoID {
		return nil, nil, false
	}
	delete(os.byLease, key)
	return o.own.pin, func() { close(o.adopted) }, true
}

// close ends every orphan at once and waits until their renders stopped.
func (os *orphans) close() {
	os.mu.Lock()
	os.closed = true
	all := os.byLease
	os.byLease = map[[sha256.Size]byte]*orphan{}
	os.mu.Unlock()
	for _, o := range all {
		o.own.release()
	}
	os.wg.Wait()
}

// pinFor pins the call's lease for video id: a fresh pin, or the pin of an
// orphan of the same lease and video, which the call adopts (the lease is
// busy with exactly the render the call resumes). adopted, if not nil, must
// be called once the call's reader is open.
func (s *Animation) pinFor(ctx context.Context, token, id string) (pin *lease.Pin, adopted func(), err error) {
	pin, err = s.leases.Pin(ctx, token)
	if errors.Is(err, lease.ErrBusy) {
		if p, done, ok := s.orphans.adopt(token, id); ok {
			return p, done, nil
		}
	}
	return pin, nil, err
}

// leaseEndedStatus is how a render ends when its lease ended under it.
func leaseEndedStatus(err error) error {
	reason, msg := "LEASE_LOST", "the render's lease could no longer be kept alive; acquire a new lease and resume"
	switch {
	case errors.Is(err, lease.ErrReleased):
		reason, msg = "LEASE_RELEASED", "the render's lease was released; the render has stopped"
	case errors.Is(err, lease.ErrRevoked):
		reason, msg = "LEASE_REVOKED", "the render's lease was revoked by an operator; the render has stopped"
	}
	return withDetails(codes.Aborted, msg, &errdetails.ErrorInfo{Reason: reason, Domain: errorDomain})
}

// errorDomain is the domain of whirl's google.rpc.ErrorInfo reasons.
const errorDomain = "whirl.v1"
