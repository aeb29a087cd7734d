// Package robustness checks whirl's one promise to operators, "at most
// --capacity renders at once" across every replica sharing a lease pool,
// under random traffic and injected faults, in the manner of etcd's
// tests/robustness.
//
// Clients drive the real server binary (one replica on the memory store, or
// two on a three-member etcd cluster) with acquires, renewals, releases,
// revocations, listings and renders that are cancelled and resumed, while
// faults kill replicas, etcd members and ffmpeg processes and cut a
// replica off from etcd. Every call is recorded as the client saw it (start,
// end, input, result); the history is checked with porcupine against a
// sequential model of the lease pool (Model), and validators beside it
// sample the renders running on every replica (the whirl_renders_running
// gauge and the replica's ffmpeg children in /proc) and check that no
// render outlives its lease and that the pool ends empty.
//
// The tests (TestRobustness*) run for WHIRL_ROBUSTNESS_DURATION per
// scenario (default 45s); WHIRL_ROBUSTNESS_SEED replays a seed. A failure
// names a results folder holding the seed, the history as JSON and
// porcupine's visualisation.
package robustness
