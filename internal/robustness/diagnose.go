package robustness

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Diagnose finds where a history stops being one the model allows, for a
// report: porcupine may need exponential time to prove a long history
// illegal, but a short prefix proves it fast. It bisects on prefixes (the
// calls begun by some instant; those still running then count as of unknown
// outcome) with perStep for each check, and describes the last operations
// of the first prefix that fails. Empty when every prefix passes.
func (p Params) Diagnose(ops []Op, perStep time.Duration) string {
	lo, hi := 1, len(ops)
	for lo < hi {
		mid := (lo + hi) / 2
		if porcupine.CheckOperationsTimeout(p.Model(), p.Operations(prefix(ops, mid)), perStep) == porcupine.Ok {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo >= len(ops) && porcupine.CheckOperationsTimeout(p.Model(), p.Operations(ops), perStep) == porcupine.Ok {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the first %d operations (to %s) are already not allowed; the last of them:", lo+1, secs(ops[min(lo, len(ops)-1)].Call))
	for _, op := range ops[max(0, lo-11):min(lo+1, len(ops))] {
		end := "…"
		if op.Return != math.MaxInt64 {
			end = secs(op.Return)
		}
		fmt.Fprintf(&b, "\n  client %d %s-%s %s", op.Client, secs(op.Call), end, describeOp(op))
	}
	return b.String()
}

// prefix is ops[:n+1], the calls that had begun when ops[n] began; those
// that had not returned by then become of unknown outcome (renders: ended).
func prefix(ops []Op, n int) []Op {
	cut := ops[n].Call
	out := make([]Op, 0, n+1)
	for _, op := range ops[:n+1] {
		if op.Return != math.MaxInt64 && op.Return > cut {
			op.Output = Output{Result: ResultUnknown, ErrAt: op.Return}
			if op.Input.Kind == KindRender {
				op.Output.Result = ResultEnded
			} else {
				op.Return = math.MaxInt64
			}
		}
		out = append(out, op)
	}
	return out
}
