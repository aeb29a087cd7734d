package encode

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// Budget is the process-wide bound on span encoders running at once,
// shared by every video being encoded. A video's first encoder waits its
// turn in line (first come, first served) and stays the video's until its
// last span; it takes more only while some are free and nobody waits, so a
// video borrowing extra encoders never overtakes one waiting for its first.
//
// Both halves of that rest on semaphore.Weighted: Acquire queues its
// callers and Release hands freed weight to the front of the queue first;
// TryAcquire fails while anyone is queued.
type Budget struct {
	sem  *semaphore.Weighted
	size int
}

// NewBudget returns a Budget of n encoders (at least 1).
func NewBudget(n int) *Budget {
	n = max(n, 1)
	return &Budget{sem: semaphore.NewWeighted(int64(n)), size: n}
}

// Size is the number of encoders b allows at once.
func (b *Budget) Size() int { return b.size }

// acquire waits in line for an encoder.
func (b *Budget) acquire(ctx context.Context) (release func(), err error) {
	if err := b.sem.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	return b.release, nil
}

// tryAcquire takes an encoder if one is free and nobody waits for one.
func (b *Budget) tryAcquire() (release func(), ok bool) {
	if !b.sem.TryAcquire(1) {
		return nil, false
	}
	return b.release, true
}

func (b *Budget) release() { b.sem.Release(1) }
