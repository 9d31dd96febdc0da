package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sidekickhq/sidekick/platform/natsauth"
)

func (r *root) natsKeysCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "nats-keys DIR [USER...]",
		Short: "Make NKeys for Sidekick's NATS users (all, or the ones named)",
		Long: `Makes an NKey pair for each NATS user named (every service and admin when
none is): DIR/<user>.nk holds the seed, for the Secret sidekick-nats-<user>
(sidekick-nats-admin for admin); DIR/keys.conf holds the public keys, for
the NATS servers' Secret sidekick-nats-keys. To rotate one user's key, name
it: keys.conf then holds its line only, to replace in the Secret's file.
See docs/operations.md, "NATS users and TLS".`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o700); err != nil {
				return fmt.Errorf("nats-keys: %w", err)
			}
			k, err := natsauth.NewKeys(args[0], args[1:]...)
			if err != nil {
				return err
			}
			fmt.Fprintf(r.io.Stdout, "seeds in %s/<user>.nk; public keys in %s:\n%s", args[0], k.KeysFile(), k.KeysConfig())
			return nil
		},
	}
}
