//go:build race

package etcdtest

// raceEnabled: the race detector slows the in-process etcd servers 10-50x,
// so timing-bound tests widen their timeouts.
const raceEnabled = true
