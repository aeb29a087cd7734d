package lease

import "sync"

// Pin is a render's hold on its lease, made by Registry.Pin. While it is
// held the lease cannot expire and its slot cannot be handed on; when the
// lease ends under it (released, revoked, or no longer provably alive) Lost
// closes and Err says why, and the slot stays taken until Unpin, so the
// holder can stop its work first.
type Pin struct {
	lease Lease
	unpin func()

	lostOnce  sync.Once
	lost      chan struct{}
	err       error
	unpinOnce sync.Once
}

// NewPin is for stores: it returns a pin on l whose Unpin calls unpin once.
func NewPin(l Lease, unpin func()) *Pin {
	return &Pin{lease: l, unpin: unpin, lost: make(chan struct{})}
}

// Lease is the lease as it was pinned.
func (p *Pin) Lease() Lease { return p.lease }

// Lost is closed when the lease ends while pinned.
func (p *Pin) Lost() <-chan struct{} { return p.lost }

// Err is why the lease ended (ErrReleased, ErrRevoked or ErrFenced), or nil
// while Lost is open.
func (p *Pin) Err() error {
	select {
	case <-p.lost:
		return p.err
	default:
		return nil
	}
}

// Lose is for stores: it reports that the lease ended under the pin,
// because of reason. Only the first call counts.
func (p *Pin) Lose(reason error) {
	p.lostOnce.Do(func() {
		p.err = reason
		close(p.lost)
	})
}

// Unpin ends the pin; later calls do nothing. Call it once the work the pin
// guards has stopped: for a lease that ended under it, that is when its
// slot frees.
func (p *Pin) Unpin() { p.unpinOnce.Do(p.unpin) }
