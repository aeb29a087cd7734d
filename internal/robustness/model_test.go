package robustness

import (
	"math"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

const ms = int64(time.Millisecond)

var testParams = Params{
	Capacity: 1, TTL: 2 * time.Second, MaxAge: 10 * time.Second,
	Tolerance: 300 * time.Millisecond, Late: 300 * time.Millisecond, Settle: 500 * time.Millisecond, StopWithin: time.Second, Memory: true,
}

// Builders of operations; times in milliseconds since the run began.
func acquireOK(client int, call, ret int64, holder, rid, id string) Op {
	return Op{Client: client, Call: call * ms, Return: ret * ms,
		Input:  Input{Kind: KindAcquire, Holder: holder, RequestID: rid},
		Output: Output{Result: ResultOK, LeaseID: id, Handle: "h-" + id, Expire: ret*ms + int64(testParams.TTL), MaxExpire: ret*ms + int64(testParams.MaxAge)}}
}

func acquireUnknown(client int, call, errAt int64, holder, rid string) Op {
	return Op{Client: client, Call: call * ms, Return: math.MaxInt64,
		Input:  Input{Kind: KindAcquire, Holder: holder, RequestID: rid},
		Output: Output{Result: ResultUnknown, ErrAt: errAt * ms}}
}

func onLease(client int, kind Kind, call, ret int64, id string, res Result) Op {
	op := Op{Client: client, Call: call * ms, Return: ret * ms, Input: Input{Kind: kind, LeaseID: id}, Output: Output{Result: res}}
	if kind == KindRevoke {
		op.Input = Input{Kind: kind, Handle: "h-" + id}
	}
	if kind == KindRenew && res == ResultOK {
		op.Output.LeaseID, op.Output.Expire = id, ret*ms+int64(testParams.TTL)
	}
	return op
}

func list(client int, call, ret int64, holders map[string]string) Op {
	op := Op{Client: client, Call: call * ms, Return: ret * ms, Input: Input{Kind: KindList}, Output: Output{Result: ResultOK, Count: len(holders)}}
	for h, holder := range holders {
		op.Output.Handles = append(op.Output.Handles, h)
		op.Output.Holders = append(op.Output.Holders, holder)
	}
	return op
}

func crash(call, ret int64) Op {
	return Op{Client: 9, Call: call * ms, Return: ret * ms, Input: Input{Kind: KindCrash}, Output: Output{Result: ResultOK}}
}

func TestModel(t *testing.T) {
	notMemory := testParams
	notMemory.Memory = false
	tests := []struct {
		name   string
		params Params
		ops    []Op
		legal  bool
	}{
		{"a second lease while the first is surely live", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), acquireOK(1, 20, 30, "b", "", "B")}, false},
		{"a second lease after the first surely expired", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), acquireOK(1, 2500, 2510, "b", "", "B")}, true},
		{"a second lease when the first may just have expired", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), acquireOK(1, 1900, 2100, "b", "", "B")}, true},
		{"renewed after its release returned", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), onLease(0, KindRelease, 100, 110, "A", ResultOK), onLease(1, KindRenew, 200, 210, "A", ResultOK)}, false},
		{"renewed concurrently with its release", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), onLease(0, KindRelease, 100, 200, "A", ResultOK), onLease(1, KindRenew, 150, 160, "A", ResultOK)}, true},
		{"not found while surely live", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), onLease(0, KindRenew, 500, 510, "A", ResultNotFound)}, false},
		{"renewed after a revocation returned", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), onLease(1, KindRevoke, 100, 110, "A", ResultOK), onLease(0, KindRenew, 200, 210, "A", ResultOK)}, false},
		{"an acquire of unknown outcome need not have granted", testParams, []Op{
			acquireUnknown(0, 0, 100, "g", ""), acquireOK(1, 500, 510, "b", "", "B")}, true},
		{"a listing shows the lease of an unknown acquire", testParams, []Op{
			acquireUnknown(0, 0, 100, "g", ""), list(1, 500, 510, map[string]string{"hx": "g"})}, true},
		{"a listing shows a lease no acquire explains", testParams, []Op{
			acquireUnknown(0, 0, 100, "g", ""), list(1, 500, 510, map[string]string{"hx": "x"})}, false},
		{"a listing leaves out a surely live lease", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), list(1, 500, 510, nil)}, false},
		{"a repeated request_id gets its lease back", testParams, []Op{
			acquireOK(0, 0, 10, "a", "r1", "A"), acquireOK(0, 100, 110, "a", "r1", "A")}, true},
		{"a repeated request_id gets another lease while its own lives", Params{Capacity: 2, TTL: 2 * time.Second, MaxAge: 10 * time.Second, Tolerance: 300 * time.Millisecond, Late: 300 * time.Millisecond}, []Op{
			acquireOK(0, 0, 10, "a", "r1", "A"), acquireOK(0, 100, 110, "a", "r1", "B")}, false},
		{"a retried request_id names the lease an unknown acquire granted", testParams, []Op{
			acquireUnknown(0, 0, 100, "a", "r1"), acquireOK(0, 150, 160, "a", "r1", "A")}, true},
		{"a memory replica's crash empties the pool", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), crash(100, 200), onLease(0, KindRenew, 300, 310, "A", ResultNotFound)}, true},
		{"an etcd replica's crash keeps the pool", notMemory, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), crash(100, 200), onLease(0, KindRenew, 300, 310, "A", ResultNotFound)}, false},
		{"a render keeps its lease alive and renews it at its end", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), onLease(0, KindRender, 100, 3500, "A", ResultOK), onLease(0, KindRenew, 4000, 4010, "A", ResultOK)}, true},
		{"listed while its render stops after its release", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), onLease(0, KindRelease, 100, 110, "A", ResultOK), list(1, 500, 510, map[string]string{"h-A": "a"})}, true},
		{"listed after its release past its expiry", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), onLease(0, KindRelease, 100, 110, "A", ResultOK), list(1, 2500, 2510, map[string]string{"h-A": "a"})}, false},
		{"released twice", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), onLease(0, KindRelease, 100, 110, "A", ResultOK), onLease(0, KindRelease, 200, 210, "A", ResultOK)}, false},
		{"a whole render after its release", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), onLease(0, KindRelease, 100, 110, "A", ResultOK), onLease(0, KindRender, 200, 900, "A", ResultOK)}, false},
		{"renewed after its expiry", testParams, []Op{
			acquireOK(0, 0, 10, "a", "", "A"), onLease(0, KindRenew, 4000, 4010, "A", ResultOK)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := porcupine.CheckOperations(tt.params.Model(), tt.params.Operations(tt.ops))
			if got != tt.legal {
				t.Errorf("linearizable = %v, want %v", got, tt.legal)
			}
		})
	}
}
