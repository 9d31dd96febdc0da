//go:build !linux

package loadgen

import "time"

// Ticker ticks every period. Outside Linux it is a time.Ticker, which an
// idle Go runtime may fire up to a millisecond late; the lateness is
// charged to the latency, never hidden.
type Ticker struct {
	t     *time.Ticker
	start time.Time
}

// NewTicker starts a ticker whose first tick is one period from now.
func NewTicker(period time.Duration) (*Ticker, error) {
	return &Ticker{t: time.NewTicker(period), start: time.Now()}, nil
}

// Start is when the ticker was started.
func (t *Ticker) Start() time.Time { return t.start }

// Wait blocks until the next tick.
func (t *Ticker) Wait() error {
	<-t.t.C
	return nil
}

// Close stops the ticker.
func (t *Ticker) Close() error {
	t.t.Stop()
	return nil
}
