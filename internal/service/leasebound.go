package service

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/lease"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
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
	// calls are the RenderAnimation calls holding a pin, by lease: a resume
	// that finds its lease busy waits for the call it replaces to end.
	calls  map[[sha256.Size]byte]*call
	closed bool
	wg     sync.WaitGroup
}

type orphan struct {
	videoID string
	own     ownership
	// adopted is closed by the call that takes the orphan over, once its
	// own reader holds the render, so the orphan's reader may leave.
	adopted chan struct{}
}

// call is a RenderAnimation call holding its lease's pin.
type call struct {
	videoID string
	ended   chan struct{}
}

func newOrphans(grace time.Duration) *orphans {
	return &orphans{grace: grace, byLease: map[[sha256.Size]byte]*orphan{}, calls: map[[sha256.Size]byte]*call{}}
}

// enter records a call holding token's pin for videoID; the function it
// returns records its end.
func (g *orphans) enter(token, videoID string) func() {
	key := sha256.Sum256([]byte(token))
	c := &call{videoID: videoID, ended: make(chan struct{})}
	g.mu.Lock()
	g.calls[key] = c
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		if g.calls[key] == c {
			delete(g.calls, key)
		}
		g.mu.Unlock()
		close(c.ended)
	}
}

// calling returns the end of the call holding token's pin for videoID, or
// nil if there is none.
func (g *orphans) calling(token, videoID string) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.calls[sha256.Sum256([]byte(token))]; c != nil && c.videoID == videoID {
		return c.ended
	}
	return nil
}

// keep holds own for the grace if its render is unfinished and its lease
// lives; otherwise (or with no grace) it releases own at once.
func (g *orphans) keep(token, videoID string, own ownership) {
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
	g.mu.Lock()
	if g.grace <= 0 || g.closed || g.byLease[key] != nil {
		g.mu.Unlock()
		own.release()
		return
	}
	o := &orphan{videoID: videoID, own: own, adopted: make(chan struct{})}
	g.byLease[key] = o
	g.wg.Add(1)
	g.mu.Unlock()
	go g.watch(key, o)
}

// watch ends o when the grace passes, its lease is lost or its render
// finishes, unless a resuming call adopts it first.
func (g *orphans) watch(key [sha256.Size]byte, o *orphan) {
	defer g.wg.Done()
	t := time.NewTimer(g.grace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-o.own.pin.Lost():
	case <-o.own.r.Finished():
	case <-o.adopted:
	}
	g.mu.Lock()
	mine := g.byLease[key] == o
	if mine {
		delete(g.byLease, key)
	}
	g.mu.Unlock()
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
func (g *orphans) adopt(token, videoID string) (pin *lease.Pin, done func(), ok bool) {
	key := sha256.Sum256([]byte(token))
	g.mu.Lock()
	defer g.mu.Unlock()
	o := g.byLease[key]
	if o == nil || o.videoID != videoID {
		return nil, nil, false
	}
	delete(g.byLease, key)
	return o.own.pin, func() { close(o.adopted) }, true
}

// close ends every orphan at once and waits until their renders stopped.
func (g *orphans) close() {
	g.mu.Lock()
	g.closed = true
	all := g.byLease
	g.byLease = map[[sha256.Size]byte]*orphan{}
	g.mu.Unlock()
	for _, o := range all {
		o.own.release()
	}
	g.wg.Wait()
}

// pinFor pins the call's lease for video id: a fresh pin, or the pin of an
// orphan of the same lease and video, which the call adopts (the lease is
// busy with exactly the render the call resumes). A resume can arrive
// before the call it replaces has seen its client go: if a call of this
// replica holds the lease for the same video, pinFor waits a moment for it
// to end and become the orphan. adopted, if not nil, must be called once the
// call's reader is open; done once the call has let go of its pin.
func (s *Animation) pinFor(ctx context.Context, token, id string) (pin *lease.Pin, adopted, done func(), err error) {
	for try := 0; ; try++ {
		pin, err = s.leases.Pin(ctx, token)
		if !errors.Is(err, lease.ErrBusy) {
			break
		}
		if p, adopt, ok := s.orphans.adopt(token, id); ok {
			pin, adopted, err = p, adopt, nil
			break
		}
		ending := s.orphans.calling(token, id)
		if ending == nil || try > 0 {
			return nil, nil, nil, err
		}
		t := time.NewTimer(resumeOverlap)
		select {
		case <-ending:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return pin, adopted, s.orphans.enter(token, id), nil
}

// resumeOverlap bounds how long a resume waits for the call it replaces to
// notice that its client has gone.
const resumeOverlap = time.Second

// leaseEndedStatus is how a render ends when its lease ended under it.
func leaseEndedStatus(err error) error {
	switch {
	case errors.Is(err, lease.ErrReleased):
		return newStatus(codes.Aborted, whirlv1.ErrorReason_LEASE_RELEASED, "the render's lease was released; the render has stopped")
	case errors.Is(err, lease.ErrRevoked):
		return newStatus(codes.Aborted, whirlv1.ErrorReason_LEASE_REVOKED, "the render's lease was revoked by an operator; the render has stopped")
	}
	return newStatus(codes.Aborted, whirlv1.ErrorReason_LEASE_LOST, "the render's lease could no longer be kept alive; acquire a new lease and resume")
}
