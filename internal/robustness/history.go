package robustness

import (
	"encoding/json"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Kind is what an operation did.
type Kind string

// The operations in a history.
const (
	KindAcquire Kind = "acquire"
	KindRenew   Kind = "renew"
	KindRelease Kind = "release"
	KindRevoke  Kind = "revoke"
	KindRender  Kind = "render"
	KindList    Kind = "list"
	// KindCrash is a memory-store replica killed: its pool is gone.
	KindCrash Kind = "crash"
)

// Result is how an operation ended, as far as the lease pool is concerned.
type Result string

// The results the model tells apart.
const (
	ResultOK Result = "ok"
	// ResultNotFound: the lease was not live (NOT_FOUND).
	ResultNotFound Result = "not-found"
	// ResultRefused: a definite refusal that changed nothing (no slot,
	// maximum age, busy, bad request).
	ResultRefused Result = "refused"
	// ResultUnknown: the client cannot tell whether the call took effect
	// (transport error, deadline, replica gone).
	ResultUnknown Result = "unknown"
	// ResultEnded: a render that ended without a trailer (cancelled by the
	// client, aborted or failed); its lease may have been renewed at the end.
	ResultEnded Result = "ended"
)

// Input is an operation's request.
type Input struct {
	Kind      Kind   `json:"kind"`
	Replica   int    `json:"replica"`
	Holder    string `json:"holder,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Wait      bool   `json:"wait,omitempty"`
	LeaseID   string `json:"lease_id,omitempty"`
	Handle    string `json:"handle,omitempty"`
	// Resume is set on a render that continues an interrupted one.
	Resume bool `json:"resume,omitempty"`
}

// Output is an operation's result. Times are nanoseconds since the run
// began (Recorder.Since of the server's wall-clock timestamps).
type Output struct {
	Result    Result `json:"result"`
	Code      string `json:"code,omitempty"`
	Err       string `json:"err,omitempty"`
	LeaseID   string `json:"lease_id,omitempty"`
	Handle    string `json:"handle,omitempty"`
	Expire    int64  `json:"expire,omitempty"`
	MaxExpire int64  `json:"max_expire,omitempty"`
	// ErrAt is when the client saw an unknown outcome; the operation's
	// end is infinite for porcupine, but the server cannot act on it much
	// later than this (the call's context ends with the client's).
	ErrAt int64 `json:"err_at,omitempty"`
	// Listed leases (KindList): handles and their holders, and the count.
	Handles []string `json:"handles,omitempty"`
	Holders []string `json:"holders,omitempty"`
	// Rendering says, for each listed lease, whether a render runs under it.
	Rendering []bool `json:"rendering,omitempty"`
	Count     int    `json:"count,omitempty"`
	// LastEvent is when a render's stream delivered its last event.
	LastEvent int64 `json:"last_event,omitempty"`
	// Reason is the ErrorInfo reason an aborted render carried.
	Reason string `json:"reason,omitempty"`
}

// Op is one call as the client saw it.
type Op struct {
	Client int    `json:"client"`
	Call   int64  `json:"call"`
	Return int64  `json:"return"` // math.MaxInt64 while running, or unknown
	Input  Input  `json:"input"`
	Output Output `json:"output"`
}

// Recorder collects a history from concurrent clients.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewRecorder starts the run's clock.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the time since the run began, from the monotonic clock.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Since converts a server's wall-clock time to the run's clock (same
// machine: the wall clocks agree to well within the model's tolerance).
func (r *Recorder) Since(t time.Time) int64 { return int64(t.Sub(r.start)) }

// Begin records a call's start and returns the function that records its
// end.
func (r *Recorder) Begin(client int, in Input) func(Output) {
	call := r.Now()
	return func(out Output) {
		ret := r.Now()
		if out.Result == ResultUnknown {
			out.ErrAt = ret
			ret = math.MaxInt64
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.ops = append(r.ops, Op{Client: client, Call: call, Return: ret, Input: in, Output: out})
	}
}

// Ops returns the history so far, by start time.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	ops := slices.Clone(r.ops)
	r.mu.Unlock()
	slices.SortStableFunc(ops, func(a, b Op) int { return cmpInt(a.Call, b.Call) })
	return ops
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Operations turns a history into porcupine's operations. A call of
// unknown outcome ends, for porcupine, p.Settle after the client gave up:
// the server acts on a call only while the call's context lives, which
// ends with the client's, and the store finishes or abandons an operation
// within its own timeout. (Porcupine's convention of an infinite end holds
// every such call open for the rest of the history; with dozens of them
// around a fault the search is exponential.) Acquires of unknown outcome
// that no listing ever shows (patched out, as etcd's robustness tests do
// with writes never observed) are left out: the lease they may have
// granted only ever made the pool fuller, which the model never needs to
// explain.
func (p Params) Operations(ops []Op) []porcupine.Operation {
	seen := observedHolders(ops)
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret := op.Return
		if ret == math.MaxInt64 {
			if op.Input.Kind == KindAcquire && !seen[op.Input.Holder] {
				continue
			}
			ret = op.Output.ErrAt + int64(p.Settle)
		}
		// The model needs the client's times, which porcupine does not pass
		// to Step: the whole Op is the input.
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: op, Call: op.Call, Output: op.Output, Return: ret})
	}
	return out
}

// observedHolders are the holders of leases listings showed that no
// acquire returned.
func observedHolders(ops []Op) map[string]bool {
	granted := make(map[string]bool)
	for _, op := range ops {
		if op.Input.Kind == KindAcquire && op.Output.Result == ResultOK {
			granted[op.Output.Handle] = true
		}
	}
	seen := make(map[string]bool)
	for _, op := range ops {
		if op.Input.Kind != KindList {
			continue
		}
		for i, h := range op.Output.Handles {
			if !granted[h] {
				seen[op.Output.Holders[i]] = true
			}
		}
	}
	return seen
}

// MarshalHistory is the history as indented JSON.
func MarshalHistory(ops []Op) ([]byte, error) { return json.MarshalIndent(ops, "", "  ") }
