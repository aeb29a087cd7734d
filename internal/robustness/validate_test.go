package robustness

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckSamples(t *testing.T) {
	tests := []struct {
		name    string
		samples []Sample
		want    string // a substring of the first violation; empty: none
	}{
		{"within capacity", []Sample{{Encoders: []int{1, 2}, Gauges: []float64{1, 2}}}, ""},
		{"encoders over capacity across replicas", []Sample{{Encoders: []int{2, 2}, Gauges: []float64{-1, -1}}}, "encoders over capacity"},
		{"gauges over capacity", repeat(Sample{Encoders: []int{0, 0}, Gauges: []float64{2, 2}}, overRun), "renders over capacity"},
		{"gauges over capacity for a moment", repeat(Sample{Encoders: []int{0, 0}, Gauges: []float64{2, 2}}, overRun-1), ""},
		{"a gauge under its encoders for long", repeat(Sample{Encoders: []int{2}, Gauges: []float64{1}}, underReportRun), "gauge under-reports"},
		{"a gauge under its encoders briefly", repeat(Sample{Encoders: []int{2}, Gauges: []float64{1}}, underReportRun-1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := CheckSamples(tt.samples, 3)
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("violations %q, want none", got)
			case tt.want != "" && (len(got) == 0 || !strings.Contains(got[0], tt.want)):
				t.Errorf("violations %q, want one about %q", got, tt.want)
			}
		})
	}
}

func repeat(s Sample, n int) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestCheckRendersAfterEnd(t *testing.T) {
	render := func(lastEvent int64) Op {
		op := onLease(0, KindRender, 0, lastEvent, "A", ResultEnded)
		op.Output.LastEvent = lastEvent * ms
		return op
	}
	etcd := testParams
	etcd.Memory = false // TTL 2 s: a replica cut off at 150 ms stops its renders by 2150 ms + 1300 ms
	cut := func(replica int, start, end int64) []FaultLog {
		return []FaultLog{{Name: cutEtcdFault, Start: start * ms, End: end * ms, Detail: fmt.Sprintf(replicaDetail, replica)}}
	}
	released := []Op{acquireOK(0, 0, 10, "a", "", "A"), onLease(1, KindRelease, 100, 200, "A", ResultOK)}
	tests := []struct {
		name   string
		ops    []Op
		faults []FaultLog
		p      Params
		bad    bool
	}{
		{"stops within the bound of its release", []Op{acquireOK(0, 0, 10, "a", "", "A"), onLease(1, KindRelease, 100, 200, "A", ResultOK), render(1400)}, nil, testParams, false},
		{"streams on past its release", []Op{acquireOK(0, 0, 10, "a", "", "A"), onLease(1, KindRelease, 100, 200, "A", ResultOK), render(1600)}, nil, testParams, true},
		{"streams on past its revocation", []Op{acquireOK(0, 0, 10, "a", "", "A"), onLease(1, KindRevoke, 100, 200, "A", ResultOK), render(3000)}, nil, testParams, true},
		{"a failed release ends nothing", []Op{acquireOK(0, 0, 10, "a", "", "A"), onLease(1, KindRelease, 100, 200, "A", ResultUnknown), render(3000)}, nil, testParams, false},
		{"listed rendering while it stops", []Op{acquireOK(0, 0, 10, "a", "", "A"), onLease(1, KindRelease, 100, 200, "A", ResultOK), listRendering(1000)}, nil, testParams, false},
		{"listed rendering long after its release", []Op{acquireOK(0, 0, 10, "a", "", "A"), onLease(1, KindRelease, 100, 200, "A", ResultOK), listRendering(2000)}, nil, testParams, true},
		{"on a replica cut off from etcd, stops once fenced", append(released[:2:2], render(3400)), cut(0, 150, 4000), etcd, false},
		{"on a replica cut off from etcd, streams on past fencing", append(released[:2:2], render(3600)), cut(0, 150, 4000), etcd, true},
		{"another replica's cut excuses nothing", append(released[:2:2], render(3400)), cut(1, 150, 4000), etcd, true},
		{"a cut healed before the release excuses nothing", append(released[:2:2], render(3400)), cut(0, 0, 50), etcd, true},
		{"the memory store has no etcd to be cut from", append(released[:2:2], render(3400)), cut(0, 150, 4000), testParams, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckRendersAfterEnd(tt.ops, tt.faults, tt.p)
			if (len(got) > 0) != tt.bad {
				t.Errorf("violations %q, want some: %v", got, tt.bad)
			}
		})
	}
}

func listRendering(at int64) Op {
	op := list(2, at, at+5, map[string]string{"h-A": "a"})
	op.Output.Rendering = []bool{true}
	return op
}

func TestParseGauge(t *testing.T) {
	tests := []struct {
		text string
		v    float64
		name string
	}{
		{"# TYPE whirl_renders_running gauge\nwhirl_renders_in_flight 3\nwhirl_renders_running 2\nwhirl_renders_running_other 7\n", 2, "whirl_renders_running"},
		{"whirl_renders_in_flight 3\nwhirl_renders_queued 1\n", 3, "whirl_renders_in_flight"},
		{"whirl_cache_bytes 5\n", -1, ""},
	}
	for _, tt := range tests {
		if v, name := parseGauge(strings.NewReader(tt.text)); v != tt.v || name != tt.name {
			t.Errorf("parseGauge(%q) = %v, %q; want %v, %q", tt.text, v, name, tt.v, tt.name)
		}
	}
}

func TestCheckEncodersSeen(t *testing.T) {
	// Samples every 40 ms from 0 to 400 ms on two replicas, none counting.
	var none []Sample
	for at := int64(0); at <= 400; at += 40 {
		none = append(none, Sample{T: at * ms, Encoders: []int{0, 0}})
	}
	// counted is none with one encoder on replica in the last sample.
	counted := func(replica int) []Sample {
		last := Sample{T: 400 * ms, Encoders: []int{0, 0}}
		last.Encoders[replica] = 1
		return append(none[:len(none)-1:len(none)-1], last)
	}
	render := func(replica int, call, ret int64, res Result) Op {
		op := onLease(0, KindRender, call, ret, "A", res)
		op.Input.Replica = replica
		return op
	}
	threeSamples := render(1, 30, 150, ResultOK) // 40, 80, 120
	resumed := threeSamples
	resumed.Input.Resume = true
	tests := []struct {
		name    string
		samples []Sample
		ops     []Op
		bad     bool
	}{
		{"a render over three samples, no encoder counted", none, []Op{threeSamples}, true},
		{"an encoder counted on its replica, at another time", counted(1), []Op{threeSamples}, false},
		{"an encoder counted on the other replica only", counted(0), []Op{threeSamples}, true},
		{"a render over two samples", none, []Op{render(1, 30, 110, ResultOK)}, false},
		{"a render cut short", none, []Op{render(1, 30, 150, ResultEnded)}, false},
		{"a resumed render (may come from the cache)", none, []Op{resumed}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckEncodersSeen(tt.samples, tt.ops)
			if bad := len(got) > 0; bad != tt.bad {
				t.Errorf("violations %q, want some: %v", got, tt.bad)
			}
		})
	}
}
