package robustness

import "fmt"

// underReportRun is how many samples in a row a replica may run more
// encoders than its gauge says renders before the gauge is called wrong:
// an encoder exits a moment after its render stops counting.
const underReportRun = 10

// overRun is how many samples in a row the gauges must sum past capacity
// to count: the replicas' gauges are scraped at different instants, so a
// render that ended on one replica may still be counted while its slot's
// next render has started on another.
const overRun = 3

// maxReported bounds the violations of one kind listed one by one.
const maxReported = 5

// violations collects findings, listing the first few of each kind.
type violations struct {
	list   []string
	counts map[string]int
}

func (v *violations) add(kind, format string, args ...any) {
	if v.counts == nil {
		v.counts = make(map[string]int)
	}
	v.counts[kind]++
	if v.counts[kind] <= maxReported {
		v.list = append(v.list, kind+": "+fmt.Sprintf(format, args...))
	}
}

func (v *violations) all() []string {
	out := v.list
	for kind, n := range v.counts {
		if n > maxReported {
			out = append(out, fmt.Sprintf("%s: %d more", kind, n-maxReported))
		}
	}
	return out
}

func secs(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }

// CheckSamples: at every sample, the renders running over all replicas
// (their gauges, and their encoder children) are at most capacity, and no
// replica's gauge says fewer renders than it runs encoders for long.
// gaugeSeen reports whether any replica exported the gauge.
func CheckSamples(samples []Sample, capacity int) (found []string, gaugeSeen bool) {
	var v violations
	under := make(map[int]int)
	over := 0
	for _, s := range samples {
		enc, gauge, gauges := 0, 0.0, 0
		for i, n := range s.Encoders {
			enc += n
			g := s.Gauges[i]
			if g < 0 {
				under[i] = 0
				continue
			}
			gaugeSeen = true
			gauge += g
			gauges++
			if float64(n) > g {
				under[i]++
				if under[i] == underReportRun {
					v.add("gauge under-reports", "at %s replica %d has run %d encoders for %d samples while its running-renders gauge says %v", secs(s.T), i, n, underReportRun, g)
				}
			} else {
				under[i] = 0
			}
		}
		if enc > capacity {
			v.add("encoders over capacity", "at %s %d ffmpeg encoders run (per replica %v), capacity %d", secs(s.T), enc, s.Encoders, capacity)
		}
		if gauges == 0 || gauge <= float64(capacity) {
			over = 0
			continue
		}
		if over++; over == overRun {
			v.add("renders over capacity", "at %s the running-renders gauges have summed to more than capacity %d for %d samples (now %v, per replica %v)", secs(s.T), capacity, overRun, gauge, s.Gauges)
		}
	}
	return v.all(), gaugeSeen
}

// CheckRendersAfterEnd: once a release or revocation of a lease returned,
// no render under that lease delivers anything to its client more than
// p.StopWithin (plus tolerance) later, and no listing shows one running
// under it after that (on etcd, after one more TTL and its lateness: a
// replica cut off from etcd stops its render but cannot clear the mark).
// The listings see the renders whose clients went away (orphans).
//
// On etcd, a render on a replica cut off from etcd (a cut-etcd fault in
// faults) cannot hear that its lease ended on another replica: it stops
// when its pin is fenced, before etcd could expire the lease, so within
// one TTL of the cut's start (plus the time a render takes to stop); its
// slot stays taken until then, which the capacity checks hold it to.
func CheckRendersAfterEnd(ops []Op, faults []FaultLog, p Params) []string {
	byHandle, ended := endedLeases(ops)
	allow := int64(p.StopWithin + p.Tolerance)
	listAllow := allow
	if !p.Memory {
		listAllow += int64(p.TTL + p.Late)
	}
	var v violations
	for _, op := range ops {
		switch {
		case op.Input.Kind == KindRender && op.Output.LastEvent != 0:
			at, ok := ended[op.Input.LeaseID]
			if !ok {
				continue
			}
			stopBy := at + allow
			if !p.Memory {
				if cut, isCut := cutFromEtcd(faults, op.Input.Replica, at, stopBy); isCut {
					stopBy = max(stopBy, cut+int64(p.TTL)+allow)
				}
			}
			if op.Output.LastEvent > stopBy {
				v.add("render outlived its lease", "client %d's render on replica %d under lease %s streamed until %s, %s after the lease's end returned at %s (result %s %s)",
					op.Client, op.Input.Replica, short(op.Input.LeaseID), secs(op.Output.LastEvent), secs(op.Output.LastEvent-at), secs(at), op.Output.Result, op.Output.Code)
			}
		case op.Input.Kind == KindList && op.Output.Result == ResultOK:
			for i, h := range op.Output.Handles {
				at, ok := ended[byHandle[h]]
				if ok && i < len(op.Output.Rendering) && op.Output.Rendering[i] && op.Call > at+listAllow {
					v.add("render outlived its lease", "a listing on replica %d at %s shows a render under lease %s, %s after the lease's end returned at %s",
						op.Input.Replica, secs(op.Call), short(byHandle[h]), secs(op.Call-at), secs(at))
				}
			}
		}
	}
	return v.all()
}

// cutFromEtcd reports when replica's cut from etcd began, if a cut-etcd
// fault on it overlapped the time from a lease's end to stopBy.
func cutFromEtcd(faults []FaultLog, replica int, end, stopBy int64) (start int64, ok bool) {
	for _, f := range faults {
		var r int
		if f.Name != cutEtcdFault || f.Err != "" {
			continue
		}
		if _, err := fmt.Sscanf(f.Detail, replicaDetail, &r); err != nil || r != replica {
			continue
		}
		if f.Start <= stopBy && f.End >= end && (!ok || f.Start < start) {
			start, ok = f.Start, true
		}
	}
	return start, ok
}

// endedLeases maps handles to lease ids, and the leases released or
// revoked to when that first returned.
func endedLeases(ops []Op) (byHandle map[string]string, ended map[string]int64) {
	byHandle = make(map[string]string)
	for _, op := range ops {
		if op.Input.Kind == KindAcquire && op.Output.Result == ResultOK {
			byHandle[op.Output.Handle] = op.Output.LeaseID
		}
	}
	ended = make(map[string]int64)
	end := func(id string, at int64) {
		if t, ok := ended[id]; id != "" && (!ok || at < t) {
			ended[id] = at
		}
	}
	for _, op := range ops {
		if op.Output.Result != ResultOK {
			continue
		}
		switch op.Input.Kind {
		case KindRelease:
			end(op.Input.LeaseID, op.Return)
		case KindRevoke:
			end(byHandle[op.Input.Handle], op.Return)
		}
	}
	return byHandle, ended
}

// CheckAccounted: every lease a listing showed was granted to some client
// (its handle came back from an acquire), or belongs to a holder whose
// acquire had an unknown outcome.
func CheckAccounted(ops []Op) []string {
	handles := make(map[string]bool)
	unsure := make(map[string]bool)
	for _, op := range ops {
		if op.Input.Kind != KindAcquire {
			continue
		}
		switch op.Output.Result {
		case ResultOK:
			handles[op.Output.Handle] = true
		case ResultUnknown:
			unsure[op.Input.Holder] = true
		}
	}
	var v violations
	for _, op := range ops {
		if op.Input.Kind != KindList || op.Output.Result != ResultOK {
			continue
		}
		for i, h := range op.Output.Handles {
			if !handles[h] && !unsure[op.Output.Holders[i]] {
				v.add("unaccounted lease", "listing at %s shows lease %s of %q, which no acquire returned", secs(op.Call), h, op.Output.Holders[i])
			}
		}
	}
	return v.all()
}

// seenRun is how many samples a completed render must span to be sure
// that one of them caught its encoder (in runs, nearly every sample within
// a render counts one).
const seenRun = 3

// CheckEncodersSeen: every replica that completed a fresh render spanning
// seenRun samples counted an encoder in some sample. A count stuck at zero
// (the replica's children not found) would let the capacity check over
// encoders pass without looking. Resumed renders may come from the cache.
func CheckEncodersSeen(samples []Sample, ops []Op) []string {
	seen := make(map[int]bool)
	for _, s := range samples {
		for i, n := range s.Encoders {
			seen[i] = seen[i] || n > 0
		}
	}
	var v violations
	for _, op := range ops {
		i := op.Input.Replica
		if op.Input.Kind != KindRender || op.Input.Resume || op.Output.Result != ResultOK || seen[i] {
			continue
		}
		spanned := 0
		for _, s := range samples {
			if s.T > op.Call && s.T < op.Return && i < len(s.Encoders) {
				spanned++
			}
		}
		if spanned >= seenRun {
			v.add("encoders never seen", "replica %d completed a render from %s to %s over %d samples, and no sample of %d counted an ffmpeg encoder on it",
				i, secs(op.Call), secs(op.Return), spanned, len(samples))
			seen[i] = true // reported once
		}
	}
	return v.all()
}
