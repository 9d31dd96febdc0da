package clock_test

import (
	"context"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/platform/clock"
)

var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func TestWaitFiresOnAdvance(t *testing.T) {
	c := clock.NewFake(start)
	done := make(chan bool, 1)
	go func() { done <- clock.Wait(context.Background(), c, time.Hour) }()
	if err := c.BlockUntilContext(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(59 * time.Minute)
	select {
	case <-done:
		t.Fatal("Wait returned before its hour passed on the clock")
	case <-time.After(20 * time.Millisecond):
	}
	c.Advance(time.Minute)
	if ok := <-done; !ok {
		t.Fatal("Wait reported a cancellation; want the full wait")
	}
	if got := c.Now(); !got.Equal(start.Add(time.Hour)) {
		t.Fatalf("Now = %v, want %v", got, start.Add(time.Hour))
	}
}

func TestWaitReturnsOnCancel(t *testing.T) {
	c := clock.NewFake(start)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool, 1)
	go func() { done <- clock.Wait(ctx, c, time.Hour) }()
	cancel()
	if ok := <-done; ok {
		t.Fatal("Wait reported the full wait after its context was cancelled")
	}
	if c.Now() != start {
		t.Fatal("a cancelled wait moved the clock")
	}
}

func TestWaitOrWake(t *testing.T) {
	c := clock.NewFake(start)
	wake := make(chan struct{}, 1)
	done := make(chan bool, 1)
	go func() { done <- clock.WaitOrWake(context.Background(), c, time.Hour, wake) }()
	wake <- struct{}{}
	if ok := <-done; !ok {
		t.Fatal("WaitOrWake reported a cancellation on a wake")
	}
	if !clock.Wait(context.Background(), c, 0) {
		t.Fatal("a zero wait on a live context reported a cancellation")
	}
}

func TestOrReal(t *testing.T) {
	f := clock.NewFake(start)
	if clock.OrReal(f) != clock.Clock(f) {
		t.Fatal("OrReal replaced the clock it was given")
	}
	if d := time.Since(clock.OrReal(nil).Now()); d < 0 || d > time.Minute {
		t.Fatalf("OrReal(nil) is not the wall clock: off by %v", d)
	}
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// An Advance that lands between the loop's work and its wait must not
// leave the wait asleep: WaitUntil measures from the instant, not from the
// clock's time when the timer is armed.
func TestWaitUntilAfterAnAdvanceReturnsAtOnce(t *testing.T) {
	c := clock.NewFake(start)
	target := start.Add(time.Second)
	c.Advance(time.Hour) // the loop was busy meanwhile
	if !clock.WaitUntil(context.Background(), c, target, nil) {
		t.Fatal("WaitUntil reported a cancellation")
	}
	done := make(chan bool, 1)
	go func() { done <- clock.WaitUntil(context.Background(), c, c.Now().Add(time.Minute), nil) }()
	if err := c.BlockUntilContext(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(59 * time.Second)
	select {
	case <-done:
		t.Fatal("WaitUntil returned before its instant")
	case <-time.After(20 * time.Millisecond):
	}
	c.Advance(time.Second)
	if ok := <-done; !ok {
		t.Fatal("WaitUntil reported a cancellation; want the instant reached")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if clock.WaitUntil(ctx, c, c.Now().Add(time.Hour), nil) {
		t.Fatal("WaitUntil on a cancelled context reported the instant reached")
	}
}
