package loadgen

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Ticker ticks every period from a Linux timerfd read through the
// netpoller. Go's own timers are waited for by an idle runtime in whole
// milliseconds (epoll_wait's timeout), which would make a sub-millisecond
// ticker up to a millisecond late; a timerfd's expiry wakes epoll_wait
// itself, on time to the kernel's timer slack (50 µs by default).
type Ticker struct {
	f     *os.File
	start time.Time
}

// NewTicker starts a ticker whose first tick is one period from now.
func NewTicker(period time.Duration) (*Ticker, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	every := unix.NsecToTimespec(int64(period))
	start := time.Now()
	if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: every, Value: every}, nil); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("timerfd_settime: %w", err)
	}
	// Non-blocking, so os.NewFile registers it with the netpoller.
	return &Ticker{f: os.NewFile(uintptr(fd), "timerfd"), start: start}, nil
}

// Start is when the ticker was started.
func (t *Ticker) Start() time.Time { return t.start }

// Wait blocks until the next tick, returning at once if ticks were missed.
func (t *Ticker) Wait() error {
	var expirations [8]byte
	_, err := io.ReadFull(t.f, expirations[:])
	return err
}

// Close stops the ticker.
func (t *Ticker) Close() error { return t.f.Close() }
