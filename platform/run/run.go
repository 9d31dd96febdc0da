// Package run is the part of every main that is the same: a context
// cancelled on SIGINT or SIGTERM, one function returning an error, and the
// exit code.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main runs fn with a context cancelled on SIGINT/SIGTERM and exits the
// process: 0 on success or a clean shutdown, 1 with the error on stderr
// otherwise.
func Main(fn func(ctx context.Context) error) {
	os.Exit(Exit(os.Stderr, fn))
}

// Exit is Main without os.Exit, for tests: it returns the exit code.
func Exit(stderr io.Writer, fn func(ctx context.Context) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := fn(ctx)
	if err == nil || (errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		return 0
	}
	fmt.Fprintln(stderr, "error:", err)
	return 1
}
