package encode

import (
	"context"
	"testing"
	"testing/synctest"
)

// TestBudgetFirstComeFirstServed: encoders go to the waiters in the order
// they came, and tryAcquire never takes one while anyone waits.
func TestBudgetFirstComeFirstServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b := NewBudget(1)
		release, err := b.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan int, 3)
		for i := range 3 {
			go func() {
				r, err := b.acquire(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				served <- i
				r()
			}()
			synctest.Wait() // waiter i is in line before waiter i+1 comes
		}
		if _, ok := b.tryAcquire(); ok {
			t.Fatal("tryAcquire took an encoder while three waited")
		}
		release()
		synctest.Wait()
		for want := range 3 {
			if got := <-served; got != want {
				t.Fatalf("waiter %d served before waiter %d", got, want)
			}
		}
		r, ok := b.tryAcquire()
		if !ok {
			t.Fatal("tryAcquire failed with the budget free")
		}
		r()
	})
}

// TestBudgetCancelled: a waiter whose context ends leaves the line.
func TestBudgetCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(1)
		release, _ := b.acquire(t.Context())
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { _, err := b.acquire(ctx); done <- err }()
		synctest.Wait()
		cancel()
		if err := <-done; err == nil {
			t.Fatal("acquire succeeded after its context ended")
		}
		release()
		if r, ok := b.tryAcquire(); !ok {
			t.Fatal("the cancelled waiter kept its place")
		} else {
			r()
		}
	})
}
