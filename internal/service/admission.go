package service

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/whirl-dev/whirl/internal/queue"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// DefaultStillSlots is how many stills draw at once unless configured: one
// CPU fewer than the machine has (at least one), so that lease calls,
// health checks and small requests always find a core while stills draw.
func DefaultStillSlots() int { return max(runtime.GOMAXPROCS(0)-1, 1) }

// queueStatus maps an error from a slot queue's Acquire to the status a
// client gets: a queue.RefusedError becomes RESOURCE_EXHAUSTED on quota
// name_queue (the line was full) or name_wait (the wait passed l.MaxWait),
// with the queue's retry hint; anything else goes through errorStatus.
// what names the calls queued ("stills").
func queueStatus(ctx context.Context, err error, name, what string, l queue.Limits) error {
	var re *queue.RefusedError
	if !errors.As(err, &re) {
		return errorStatus(err)
	}
	if re.Full {
		limit := fmt.Sprintf("%d %s waiting for a slot", l.MaxWaiting, what)
		return refusal(ctx, whirlv1.ErrorReason_QUEUE_FULL, "line full: "+limit, re.RetryAfter, name+"_queue", "at most "+limit)
	}
	limit := fmt.Sprintf("%s wait at most %s for a slot", what, l.MaxWait)
	return refusal(ctx, whirlv1.ErrorReason_QUEUE_WAIT_EXCEEDED, "no slot in time: "+limit, re.RetryAfter, name+"_wait", limit)
}
