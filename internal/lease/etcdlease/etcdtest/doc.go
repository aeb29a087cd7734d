// Package etcdtest holds the etcdlease tests that need a real etcd server:
// the shared leasetest suite against an in-process etcd (embed) and against
// Debian's standalone etcd 3.4 (/usr/bin/etcd, skipped if absent), two and
// twenty replicas on one etcd, restarts, crashed replicas, and a
// three-member cluster losing one member and then quorum.
//
// It is a separate module (replacing github.com/whirl-dev/whirl with the
// checkout four levels up) so that the etcd server packages stay out of the
// main module's build. Run it with
//
//	cd internal/lease/etcdlease/etcdtest && go test -race -count=1 ./...
//
// If the main module's requirements changed and go reports "updates to
// go.mod needed", run go mod tidy here (this module's go.mod only).
package etcdtest
