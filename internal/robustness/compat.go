package robustness

import whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"

// requestIDSupported says whether AcquireLeaseRequest has a request_id
// (idempotency key). Not yet: the traffic sends none, and the model's
// idempotence rule stays idle.
const requestIDSupported = false

// setRequestID sets the acquire's idempotency key and reports whether it
// could.
func setRequestID(_ *whirlv1.AcquireLeaseRequest, _ string) bool { return false }
