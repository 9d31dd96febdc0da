package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

func (r *root) conversationsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "conversations",
		Aliases: []string{"conv", "c"},
		Short:   "List and work on support conversations",
	}
	cmd.AddCommand(r.conversationsListCmd())
	return cmd
}

func (r *root) conversationsListCmd() *cobra.Command {
	var (
		asJSON            bool
		status            []string
		assignee, tier    string
		tag, channel, cat string
		breached          bool
		limit             int32
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List conversations, ordered by tier then deadline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &triagev1.ListConversationsRequest{Assignee: assignee, Tag: tag, Category: cat, BreachedOnly: breached, PageSize: limit}
			for _, s := range status {
				v, ok := supportv1.ConversationStatus_value["CONVERSATION_STATUS_"+enumName(s)]
				if !ok {
					return fmt.Errorf("unknown status %q (open, awaiting_customer, closed)", s)
				}
				req.Statuses = append(req.Statuses, supportv1.ConversationStatus(v))
			}
			if tier != "" {
				v, ok := supportv1.Tier_value["TIER_"+enumName(tier)]
				if !ok {
					return fmt.Errorf("unknown tier %q (priority, subscriber, community)", tier)
				}
				req.Tier = supportv1.Tier(v)
			}
			if channel != "" {
				v, ok := supportv1.Channel_value["CHANNEL_"+enumName(channel)]
				if !ok {
					return fmt.Errorf("unknown channel %q (slack, email, github, sentry)", channel)
				}
				req.Channel = supportv1.Channel(v)
			}
			cc, err := r.dial()
			if err != nil {
				return err
			}
			defer cc.Close()
			ctx, cancel := r.call(cmd.Context())
			defer cancel()
			resp, err := triagev1.NewConversationServiceClient(cc).ListConversations(ctx, req)
			if err != nil {
				return fmt.Errorf("list conversations: %w", err)
			}
			if asJSON {
				out := make([]json.RawMessage, 0, len(resp.GetConversations()))
				for _, c := range resp.GetConversations() {
					out = append(out, protoJSON(c))
				}
				return writeJSON(r.io.Stdout, out)
			}
			tw := tabwriter.NewWriter(r.io.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIER\tSTATUS\tCHANNEL\tASSIGNEE\tOPENED\tSUBJECT")
			for _, c := range resp.GetConversations() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.GetId(), short(c.GetTier().String(), "TIER_"),
					short(c.GetStatus().String(), "CONVERSATION_STATUS_"), short(c.GetChannel().String(), "CHANNEL_"),
					dash(c.GetAssignee()), c.GetOpenedAt().AsTime().Local().Format(time.DateTime), truncate(c.GetSubject(), 60))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print protobuf JSON")
	f.StringSliceVar(&status, "status", nil, "filter by status: open, awaiting_customer, closed (repeatable)")
	f.StringVar(&assignee, "assignee", "", "filter by assignee person id")
	f.StringVar(&tier, "tier", "", "filter by tier: priority, subscriber, community")
	f.StringVar(&tag, "tag", "", "filter by tag")
	f.StringVar(&channel, "channel", "", "filter by channel: slack, email, github, sentry")
	f.StringVar(&cat, "category", "", "filter by category")
	f.BoolVar(&breached, "breached", false, "only conversations past their deadline")
	f.Int32Var(&limit, "limit", 100, "maximum number of conversations")
	return cmd
}

func enumName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
}

func short(s, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(s, prefix))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
