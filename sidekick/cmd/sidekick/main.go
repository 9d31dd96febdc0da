// Command sidekick is Sidekick's operator tool: `sidekick dev` runs the
// whole system locally; the other commands work against a running Sidekick.
package main

import (
	"context"
	"os"

	"github.com/sidekickhq/sidekick/platform/run"
	"github.com/sidekickhq/sidekick/sidekick/cli"
)

func main() {
	run.Main(func(ctx context.Context) error {
		return cli.Run(ctx, os.Args[1:], cli.IO{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Environ: os.Environ()})
	})
}
