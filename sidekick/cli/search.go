package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

func (r *root) conversationsSearchCmd() *cobra.Command {
	var (
		asJSON bool
		limit  int32
	)
	cmd := &cobra.Command{
		Use:   "search QUERY",
		Short: "Find conversations by the words of their messages, notes, subject and customer",
		Long: `Find conversations by the words of their messages (customers', staff's and
bots'), private notes, subject and opening author, and their customer's name
and organisation: triage's full-text search, the console's search box. English
stemming ("crash" finds "crashes"); web search syntax: both words anywhere,
"a phrase", word or word, -word to leave out. The words may be one quoted
argument or several.

Best match first, then the newest. Each hit prints the conversation (id,
tier, status, channel, when it opened, subject) and an excerpt of its best
match: where it was found (message, note, conversation for the subject or
author, customer), the words found in **bold**. Alerts are left out, as
from the customer queue. --json prints one JSON array of the SearchHits as
protobuf JSON.`,
		Example: `  sidekick conversations search webhook timeout
  sidekick conversations search '"out of memory" -helm' --limit 5
  sidekick conversations search ERR_4012 --json | jq -r '.[].conversation.id'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			query := strings.Join(args, " ")
			if strings.TrimSpace(query) == "" {
				return fmt.Errorf("QUERY is empty: give the words to search for")
			}
			if limit < 1 {
				return fmt.Errorf("--limit %d: want 1 or more", limit)
			}
			var resp *triagev1.SearchConversationsResponse
			err := r.rpc(cmd.Context(), "search conversations", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = triagev1.NewConversationServiceClient(cc).SearchConversations(ctx, &triagev1.SearchConversationsRequest{
					Query: query, Filter: &triagev1.ListConversationsRequest{PageSize: limit},
				})
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]json.RawMessage, 0, len(resp.GetHits()))
				for _, h := range resp.GetHits() {
					out = append(out, protoJSON(h))
				}
				return writeJSON(r.io.Stdout, out)
			}
			if len(resp.GetHits()) == 0 {
				_, err := fmt.Fprintf(r.io.Stdout, "no conversation matches %q\n", query)
				return err
			}
			loc := r.location()
			for i, h := range resp.GetHits() {
				c := h.GetConversation()
				if i > 0 {
					fmt.Fprintln(r.io.Stdout)
				}
				fmt.Fprintf(r.io.Stdout, "%s  %s · %s · %s · opened %s\n  %s\n  %s: %s\n", c.GetId(), short(c.GetTier().String(), "TIER_"),
					short(c.GetStatus().String(), "CONVERSATION_STATUS_"), short(c.GetChannel().String(), "CHANNEL_"),
					fmtTime(c.GetOpenedAt(), loc), truncate(dash(c.GetSubject()), 100),
					short(h.GetSource().String(), "SEARCH_SOURCE_"), excerpt(h.GetSnippet()))
			}
			if resp.GetNextPageToken() != "" {
				_, err = fmt.Fprintf(r.io.Stdout, "\n(more conversations match: raise --limit to see them)\n")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the hits as one JSON array of protobuf JSON")
	f.Int32Var(&limit, "limit", 20, "maximum number of conversations")
	return cmd
}

// excerpt is a search snippet on one line, the words found in **bold**.
// Customers wrote it: control characters (a terminal's escape sequences
// among them) become spaces.
func excerpt(parts []*triagev1.SnippetPart) string {
	var b strings.Builder
	for _, p := range parts {
		if p.GetMatch() {
			b.WriteString("**" + p.GetText() + "**")
		} else {
			b.WriteString(p.GetText())
		}
	}
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, b.String())
	return strings.Join(strings.Fields(s), " ")
}
