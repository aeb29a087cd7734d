package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Traffic is the clients' shared setting.
type Traffic struct {
	Replicas []*Replica
	Rec      *Recorder
	Token    string
	Video    Video
	// handles is the latest listing's handles (all, then those rendering),
	// the targets of admin revocations.
	handles atomic.Pointer[[2][]string]
}

// Video is the size of every render: small, so renders are cheap.
type Video struct {
	Width, Height, FPS   int32
	MinFrames, MaxFrames int32
}

// held is a lease a client holds.
type held struct{ id, handle, rid string }

// client is one random actor.
type client struct {
	caller
	t      *Traffic
	rng    *rand.Rand
	lease  *held
	resume *resumePoint
	ridSeq int
}

// Run drives n clients until ctx ends, then each releases what it holds.
func (t *Traffic) Run(ctx context.Context, n int, seed uint64) {
	var wg sync.WaitGroup
	for i := range n {
		c := &client{
			caller: caller{id: i, rec: t.Rec, token: t.Token, holder: fmt.Sprintf("c%d", i)},
			t:      t,
			rng:    rand.New(rand.NewPCG(seed, uint64(i))),
		}
		wg.Go(func() { c.run(ctx) })
	}
	wg.Wait()
}

func (c *client) run(ctx context.Context) {
	for ctx.Err() == nil {
		c.step(ctx)
		sleep(ctx, time.Duration(20+c.rng.IntN(130))*time.Millisecond)
	}
	// Leave nothing behind: the pool must end empty.
	if c.lease != nil {
		for range 5 {
			r := c.replica()
			if out := c.release(context.WithoutCancel(ctx), r, c.lease.id); out.Result != ResultUnknown {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		c.lease = nil
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (c *client) replica() *Replica { return c.t.Replicas[c.rng.IntN(len(c.t.Replicas))] }

// step takes one random action; what is possible depends on whether the
// client holds a lease.
func (c *client) step(ctx context.Context) {
	w := c.rng.IntN(100)
	if c.lease == nil {
		switch {
		case w < 75:
			c.acquireNew(ctx)
		case w < 88:
			c.listLeases(ctx)
		default:
			c.revokeSomeone(ctx)
		}
		return
	}
	switch {
	case w < 40:
		c.renderSome(ctx)
	case w < 56:
		c.renewHeld(ctx)
	case w < 70:
		c.releaseHeld(ctx)
	case w < 78:
		c.listLeases(ctx)
	case w < 83:
		c.revokeSomeone(ctx)
	case w < 92 && c.lease.rid != "":
		// The same request again: the same lease must come back.
		c.acquireOnce(ctx, c.lease.rid)
	}
}

// acquireNew asks for a lease, with or without waiting and a request_id;
// an outcome the client cannot know is retried with the same request_id.
func (c *client) acquireNew(ctx context.Context) {
	rid := ""
	if c.rng.IntN(100) < 60 {
		c.ridSeq++
		rid = fmt.Sprintf("c%d-%d", c.id, c.ridSeq)
	}
	for try := 0; try < 3 && ctx.Err() == nil; try++ {
		if c.acquireOnce(ctx, rid) != ResultUnknown || rid == "" {
			return
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

func (c *client) acquireOnce(ctx context.Context, rid string) Result {
	out := c.acquire(ctx, c.replica(), rid, c.rng.IntN(100) < 30)
	if out.Result == ResultOK {
		c.lease = &held{id: out.LeaseID, handle: out.Handle, rid: rid}
	}
	return out.Result
}

func (c *client) renewHeld(ctx context.Context) {
	switch c.renew(ctx, c.replica(), c.lease.id).Result {
	case ResultNotFound, ResultRefused:
		// Gone, or at its maximum age: let it expire and start again.
		c.lease = nil
	}
}

func (c *client) releaseHeld(ctx context.Context) {
	if c.release(ctx, c.replica(), c.lease.id).Result != ResultUnknown {
		c.lease = nil
	}
}

func (c *client) listLeases(ctx context.Context) {
	out, rendering := c.list(ctx, c.replica())
	if out.Result == ResultOK {
		c.t.handles.Store(&[2][]string{out.Handles, rendering})
	}
}

// revokeSomeone revokes a lease of the latest listing, most often one a
// render runs under.
func (c *client) revokeSomeone(ctx context.Context) {
	h := c.t.handles.Load()
	if h == nil {
		return
	}
	pick := h[0]
	if len(h[1]) > 0 && c.rng.IntN(100) < 60 {
		pick = h[1]
	}
	if len(pick) == 0 {
		return
	}
	handle := pick[c.rng.IntN(len(pick))]
	c.revoke(ctx, c.replica(), handle)
	if c.lease != nil && c.lease.handle == handle {
		c.lease = nil
	}
}
