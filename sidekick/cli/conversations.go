package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

func (r *root) conversationsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "conversations",
		Aliases: []string{"conv", "c"},
		Short:   "List and work on support conversations",
		Long: `List and work on support conversations: show one with its messages, notes
and audit trail, search them, assign it, tag it, add a (handoff) note, reply to the
customer, close, reopen or escalate it. Commands that change a conversation record --actor (default
$USER) in its audit trail and print the conversation afterwards; --json
prints it as protobuf JSON.`,
	}
	cmd.AddCommand(
		r.conversationsListCmd(),
		r.conversationsShowCmd(),
		r.conversationsSearchCmd(),
		r.conversationsAssignCmd(),
		r.conversationsTagCmd(),
		r.conversationsNoteCmd(),
		r.conversationsReplyCmd(),
		r.conversationsRetryReplyCmd(),
		r.conversationsCloseCmd(),
		r.conversationsReopenCmd(),
		r.conversationsEscalateCmd(),
	)
	return cmd
}

func (r *root) conversationsListCmd() *cobra.Command {
	var (
		asJSON            bool
		status            []string
		assignee, tier    string
		tag, channel, cat string
		breached, alerts  bool
		limit             int32
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List conversations, ordered by tier then deadline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if assignee == "me" {
				// Triage maps a person id, email, Slack id or GitHub
				// login to the person.
				me, err := requireActor(r.opEnv().User)
				if err != nil {
					return fmt.Errorf("--assignee me: %w", err)
				}
				assignee = me
			}
			req := &triagev1.ListConversationsRequest{Assignee: assignee, Tag: tag, Category: cat, BreachedOnly: breached, PageSize: limit}
			if alerts {
				req.Kind = supportv1.ConversationKind_CONVERSATION_KIND_ALERT
			}
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
			loc := r.location()
			tw := tabwriter.NewWriter(r.io.Stdout, 0, 4, 2, ' ', 0)
			if alerts {
				fmt.Fprintln(tw, "ID\tSTATUS\tTEAM\tOCCURRENCES\tFIRST SEEN\tLAST SEEN\tASSIGNEE\tSUBJECT")
				for _, c := range resp.GetConversations() {
					a := c.GetAlert()
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", c.GetId(), short(c.GetStatus().String(), "CONVERSATION_STATUS_"),
						dash(c.GetTeam()), a.GetOccurrences(), fmtTime(a.GetFirstSeen(), loc), fmtTime(a.GetLastSeen(), loc),
						dash(c.GetAssignee()), truncate(c.GetSubject(), 60))
				}
				return tw.Flush()
			}
			fmt.Fprintln(tw, "ID\tTIER\tSTATUS\tCHANNEL\tASSIGNEE\tOPENED\tSUBJECT")
			for _, c := range resp.GetConversations() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.GetId(), short(c.GetTier().String(), "TIER_"),
					short(c.GetStatus().String(), "CONVERSATION_STATUS_"), short(c.GetChannel().String(), "CHANNEL_"),
					dash(c.GetAssignee()), fmtTime(c.GetOpenedAt(), loc), truncate(c.GetSubject(), 60))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print protobuf JSON")
	f.StringSliceVar(&status, "status", nil, "filter by status: open, awaiting_customer, closed (repeatable)")
	f.StringVar(&assignee, "assignee", "", "filter by assignee: a person id (or their email, Slack id, GitHub login), or me ($USER)")
	f.StringVar(&tier, "tier", "", "filter by tier: priority, subscriber, community")
	f.StringVar(&tag, "tag", "", "filter by tag")
	f.StringVar(&channel, "channel", "", "filter by channel: slack, email, github, sentry")
	f.StringVar(&cat, "category", "", "filter by category")
	f.BoolVar(&breached, "breached", false, "only conversations past their deadline")
	f.BoolVar(&alerts, "alerts", false, "alert conversations (Sentry issues) instead, with occurrences, first and last seen")
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

func (r *root) conversationsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a conversation with its messages, notes and audit trail",
		Long: `Show a conversation: its state (status, tier and why, categories, tags,
customer, assignee, deadline), every message oldest first, the private notes
(handoff notes marked) and the audit trail of who did what. --json prints the
whole GetConversationResponse as protobuf JSON: conversation, messages,
notes, audit.`,
		Example: `  sidekick conversations show c-8f2k
  sidekick conversations show c-8f2k --json | jq '.audit[] | .action'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var resp *triagev1.GetConversationResponse
			err := r.rpc(cmd.Context(), "get conversation "+args[0], func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = triagev1.NewConversationServiceClient(cc).GetConversation(ctx, &triagev1.GetConversationRequest{Id: args[0]})
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp))
			}
			return r.printConversation(resp)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print protobuf JSON")
	return cmd
}

// printConversation renders a conversation, its messages, notes and audit
// trail for people.
func (r *root) printConversation(resp *triagev1.GetConversationResponse) error {
	loc := r.location()
	c := resp.GetConversation()
	w := r.io.Stdout
	fmt.Fprintf(w, "Conversation %s: %s\n\n", c.GetId(), dash(c.GetSubject()))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	status := short(c.GetStatus().String(), "CONVERSATION_STATUS_")
	if c.GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED && c.GetCloseReason() != supportv1.CloseReason_CLOSE_REASON_UNSPECIFIED {
		status += " (" + short(c.GetCloseReason().String(), "CLOSE_REASON_") + ")"
	}
	row("Status", status)
	row("Channel", short(c.GetChannel().String(), "CHANNEL_"))
	if c.GetKind() == supportv1.ConversationKind_CONVERSATION_KIND_ALERT {
		a := c.GetAlert()
		row("Kind", "alert (the owning team's secondary; no customer tier or first-response deadline)")
		row("Occurrences", fmt.Sprint(a.GetOccurrences()))
		row("First seen", fmtTime(a.GetFirstSeen(), loc))
		row("Last seen", fmtTime(a.GetLastSeen(), loc))
		if a.GetLevel() != "" || a.GetProject() != "" {
			row("Level, project", dash(a.GetLevel())+", "+dash(a.GetProject()))
		}
		ack := "-"
		if a.GetAcknowledgedAt() != nil {
			ack = fmtTime(a.GetAcknowledgedAt(), loc) + " by " + a.GetAcknowledgedBy()
		}
		row("Acknowledged", ack)
	} else {
		tier := short(c.GetTier().String(), "TIER_")
		if c.GetTierReason() != "" {
			tier += " (" + c.GetTierReason() + ")"
		}
		row("Tier", tier)
	}
	if ids := c.GetLinkedConversationIds(); len(ids) > 0 {
		what := "Linked alerts"
		if c.GetKind() == supportv1.ConversationKind_CONVERSATION_KIND_ALERT {
			what = "Linked conversations"
		}
		row(what, strings.Join(ids, ", "))
	}
	row("Categories", joinOr(c.GetCategories()))
	row("Tags", joinOr(c.GetTags()))
	row("Customer", customerRef(c.GetCustomer()))
	row("Author", authorText(c.GetAuthor()))
	row("Assignee", dash(c.GetAssignee()))
	row("Team", dash(c.GetTeam()))
	row("Opened", fmtTime(c.GetOpenedAt(), loc))
	row("First response", fmtTime(c.GetFirstResponseAt(), loc))
	if c.GetDeadlineLevel() != supportv1.DeadlineLevel_DEADLINE_LEVEL_UNSPECIFIED {
		dl := short(c.GetDeadlineLevel().String(), "DEADLINE_LEVEL_")
		if c.GetNextDeadlineAt() != nil {
			dl += ", next threshold " + fmtTime(c.GetNextDeadlineAt(), loc)
		}
		row("Deadline", dl)
	}
	row("Messages", fmt.Sprint(c.GetMessageCount()))
	if c.GetPermalink() != "" {
		row("Link", c.GetPermalink())
	}
	if c.GetShareUrl() != "" {
		row("Share", c.GetShareUrl())
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// Replies sent from Sidekick show where their delivery stands.
	deliveries := map[string]*triagev1.OutboundDelivery{}
	for _, d := range resp.GetDeliveries() {
		deliveries[d.GetMessageId()] = d
	}
	fmt.Fprintf(w, "\nMessages (%d)\n", len(resp.GetMessages()))
	for _, m := range resp.GetMessages() {
		head := fmtTime(m.GetSentAt(), loc) + "  " + authorText(m.GetAuthor())
		// Triage keeps a message where it arrived and marks it when it was
		// changed or removed at the source afterwards (attributes
		// "edited", "deleted"); a deleted one's text is gone.
		k := m.GetKind()
		deleted := m.GetAttributes()["deleted"] == "true" || k == supportv1.MessageKind_MESSAGE_KIND_DELETED
		edited := m.GetAttributes()["edited"] == "true" || k == supportv1.MessageKind_MESSAGE_KIND_EDITED
		switch {
		case deleted:
			head += "  [deleted]"
		case edited:
			head += "  [edited]"
		case k != supportv1.MessageKind_MESSAGE_KIND_UNSPECIFIED && k != supportv1.MessageKind_MESSAGE_KIND_POSTED:
			head += "  [" + short(k.String(), "MESSAGE_KIND_") + "]"
		}
		fmt.Fprintln(w, head)
		if m.GetSubject() != "" && m.GetSubject() != c.GetSubject() {
			fmt.Fprintln(w, "    Subject: "+m.GetSubject())
		}
		if deleted {
			fmt.Fprintln(w, "    (deleted at the source)")
			continue
		}
		writeIndented(w, m.GetText())
		for _, a := range m.GetAttachments() {
			fmt.Fprintf(w, "    [attachment: %s]\n", a.GetName())
		}
		if d := deliveries[m.GetId()]; d != nil {
			fmt.Fprintf(w, "    [reply %s: %s]\n", d.GetOutboundId(), deliveryState(d))
		}
	}

	fmt.Fprintf(w, "\nNotes (%d)\n", len(resp.GetNotes()))
	for _, n := range resp.GetNotes() {
		head := fmtTime(n.GetCreatedAt(), loc) + "  " + dash(n.GetAuthor())
		if n.GetHandoff() {
			head += "  [handoff]"
		}
		fmt.Fprintln(w, head)
		writeIndented(w, n.GetText())
	}

	fmt.Fprintf(w, "\nAudit trail (%d)\n", len(resp.GetAudit()))
	if len(resp.GetAudit()) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tDETAIL")
	for _, a := range resp.GetAudit() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", fmtTime(a.GetAt(), loc), dash(a.GetActor()), a.GetAction(), dash(truncate(a.GetDetail(), 80)))
	}
	return tw.Flush()
}

// writeIndented prints text indented by four spaces, blank lines kept.
func writeIndented(w io.Writer, text string) {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return
	}
	for _, line := range strings.Split(text, "\n") {
		fmt.Fprintln(w, strings.TrimRight("    "+line, " "))
	}
}

func customerRef(c *supportv1.CustomerRef) string {
	if c == nil || c.GetId() == "" {
		return "-"
	}
	s := c.GetId()
	if c.GetName() != "" {
		s = c.GetName() + " (" + c.GetId() + ")"
	}
	if c.GetOrganisation() != "" && c.GetOrganisation() != c.GetName() {
		s += ", " + c.GetOrganisation()
	}
	return s
}

func authorText(a *supportv1.Author) string {
	if a == nil {
		return "-"
	}
	name := a.GetName()
	if name == "" {
		name = a.GetHandle()
	}
	if name == "" {
		name = a.GetId()
	}
	if a.GetEmail() != "" && a.GetEmail() != name {
		name += " <" + a.GetEmail() + ">"
	}
	if role := a.GetRole(); role != supportv1.AuthorRole_AUTHOR_ROLE_UNSPECIFIED {
		name += " (" + short(role.String(), "AUTHOR_ROLE_") + ")"
	}
	return dash(name)
}

// changeConversation runs one change and prints what happened (said by
// done, from the conversation after the change) or, with asJSON, the
// conversation as protobuf JSON.
func (r *root) changeConversation(cmd *cobra.Command, step string, asJSON bool,
	call func(context.Context, triagev1.ConversationServiceClient) (*supportv1.Conversation, error),
	done func(*supportv1.Conversation) string,
) error {
	var c *supportv1.Conversation
	err := r.rpc(cmd.Context(), step, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		c, err = call(ctx, triagev1.NewConversationServiceClient(cc))
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(r.io.Stdout, protoJSON(c))
	}
	_, err = fmt.Fprintln(r.io.Stdout, done(c))
	return err
}

func (r *root) conversationsAssignCmd() *cobra.Command {
	var (
		asJSON, unassign bool
		actor            string
	)
	cmd := &cobra.Command{
		Use:   "assign ID (PERSON | me | --unassign)",
		Short: "Assign a conversation to a person (a person id from 'sidekick people', or me: --actor)",
		Example: `  sidekick conversations assign c-8f2k alice
  sidekick conversations assign c-8f2k me
  sidekick conversations assign c-8f2k --unassign`,
		Args: func(cmd *cobra.Command, args []string) error {
			if unassign {
				return cobra.ExactArgs(1)(cmd, args)
			}
			if len(args) != 2 {
				return errors.New("give the conversation ID and the PERSON (or --unassign)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := requireActor(actor)
			if err != nil {
				return err
			}
			req := &triagev1.AssignRequest{Id: args[0], Actor: actor}
			if !unassign {
				req.Assignee = args[1]
				if req.Assignee == "me" {
					req.Assignee = actor
				}
			}
			return r.changeConversation(cmd, "assign "+args[0], asJSON,
				func(ctx context.Context, c triagev1.ConversationServiceClient) (*supportv1.Conversation, error) {
					resp, err := c.Assign(ctx, req)
					return resp.GetConversation(), err
				},
				func(c *supportv1.Conversation) string {
					if c.GetAssignee() == "" {
						return fmt.Sprintf("conversation %s is unassigned", c.GetId())
					}
					return fmt.Sprintf("conversation %s assigned to %s", c.GetId(), c.GetAssignee())
				})
		},
	}
	r.actorFlag(cmd, &actor)
	cmd.Flags().BoolVar(&unassign, "unassign", false, "remove the assignee")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the conversation as protobuf JSON")
	return cmd
}

func (r *root) conversationsTagCmd() *cobra.Command {
	var (
		asJSON                bool
		actor                 string
		add, remove, category []string
	)
	cmd := &cobra.Command{
		Use:   "tag ID [--add T]... [--remove T]... [--category C]...",
		Short: "Add or remove tags, or set the categories (predominant first)",
		Long: `Add and remove free-form tags, and/or replace the conversation's categories.
--category replaces the whole list in the order given, the predominant
category first; leave it out to keep the categories. Flags repeat, or take
comma-separated values.`,
		Example: `  sidekick conversations tag c-8f2k --add needs-repro --remove waiting
  sidekick conversations tag c-8f2k --category Deployments/Setup --category Performance`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(add)+len(remove)+len(category) == 0 {
				return errors.New("nothing to change: give --add, --remove or --category")
			}
			actor, err := requireActor(actor)
			if err != nil {
				return err
			}
			req := &triagev1.TagRequest{Id: args[0], Add: trimAll(add), Remove: trimAll(remove), Categories: trimAll(category), Actor: actor}
			return r.changeConversation(cmd, "tag "+args[0], asJSON,
				func(ctx context.Context, c triagev1.ConversationServiceClient) (*supportv1.Conversation, error) {
					resp, err := c.Tag(ctx, req)
					return resp.GetConversation(), err
				},
				func(c *supportv1.Conversation) string {
					return fmt.Sprintf("conversation %s: tags %s; categories %s", c.GetId(), joinOr(c.GetTags()), joinOr(c.GetCategories()))
				})
		},
	}
	r.actorFlag(cmd, &actor)
	f := cmd.Flags()
	f.StringSliceVar(&add, "add", nil, "tag to add (repeatable)")
	f.StringSliceVar(&remove, "remove", nil, "tag to remove (repeatable)")
	f.StringSliceVar(&category, "category", nil, "category, predominant first; replaces the categories (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the conversation as protobuf JSON")
	return cmd
}

func (r *root) conversationsNoteCmd() *cobra.Command {
	var (
		asJSON, handoff bool
		actor           string
	)
	cmd := &cobra.Command{
		Use:   "note ID TEXT [--handoff]",
		Short: "Add a private note; --handoff marks it as the note for the next hero",
		Long: `Add a private note to a conversation (never sent to the customer). At the end
of a hero's shift every open conversation needs a handoff note: write it with
--handoff and it goes into the next hero's handoff summary. TEXT "-" reads
the note from standard input.`,
		Example: `  sidekick conversations note c-8f2k "Asked for the helm values; waiting"
  sidekick conversations note c-8f2k --handoff "Customer retries the upgrade tomorrow 10:00 CET"
  git log -1 --format=%B | sidekick conversations note c-8f2k -`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := requireActor(actor)
			if err != nil {
				return err
			}
			text, err := r.readText(args[1])
			if err != nil {
				return err
			}
			if strings.TrimSpace(text) == "" {
				return errors.New("the note is empty")
			}
			var resp *triagev1.AddNoteResponse
			err = r.rpc(cmd.Context(), "add note to "+args[0], func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = triagev1.NewConversationServiceClient(cc).AddNote(ctx, &triagev1.AddNoteRequest{Id: args[0], Text: text, Handoff: handoff, Actor: actor})
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp.GetNote()))
			}
			kind := "note"
			if resp.GetNote().GetHandoff() {
				kind = "handoff note"
			}
			_, err = fmt.Fprintf(r.io.Stdout, "%s %s added to conversation %s\n", kind, resp.GetNote().GetId(), args[0])
			return err
		},
	}
	r.actorFlag(cmd, &actor)
	cmd.Flags().BoolVar(&handoff, "handoff", false, "this is the handoff note for the next hero")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the note as protobuf JSON")
	return cmd
}

func (r *root) conversationsReplyCmd() *cobra.Command {
	var (
		asJSON            bool
		actor, text, file string
	)
	cmd := &cobra.Command{
		Use:   "reply ID (--text TEXT | --file FILE)",
		Short: "Answer the customer on the conversation's own channel",
		Long: `Send a reply to the customer, as you, on the channel the conversation came
from: a reply in their Slack thread, an email reply in their thread, a
comment on their GitHub issue or discussion. The reply is stored at once
and sent right after; "sidekick conversations show ID" tells whether it was
sent (with a link) or failed (with the provider's reason). Plain text with
light formatting: **bold**, _italic_, ` + "`code`" + `, [label](url). --file - reads
standard input.`,
		Example: `  sidekick conversations reply c-8f2k --text "Fixed in 1.2.3, thanks for the report!"
  sidekick conversations reply c-8f2k --file answer.md`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := requireActor(actor)
			if err != nil {
				return err
			}
			switch {
			case text != "" && file != "":
				return errors.New("give the reply with --text or --file, not both")
			case file != "":
				b, err := r.readInput(file)
				if err != nil {
					return err
				}
				text = strings.TrimSpace(string(b))
			}
			if strings.TrimSpace(text) == "" {
				return errors.New("the reply is empty: give it with --text or --file")
			}
			var resp *triagev1.ReplyResponse
			err = r.rpc(cmd.Context(), "reply to "+args[0], func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = triagev1.NewConversationServiceClient(cc).Reply(ctx, &triagev1.ReplyRequest{ConversationId: args[0], Actor: actor, Text: text})
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp))
			}
			_, err = fmt.Fprintf(r.io.Stdout, "reply %s to conversation %s: %s\n", resp.GetDelivery().GetOutboundId(), args[0], deliveryState(resp.GetDelivery()))
			return err
		},
	}
	r.actorFlag(cmd, &actor)
	cmd.Flags().StringVar(&text, "text", "", "the reply")
	cmd.Flags().StringVar(&file, "file", "", "read the reply from this file (- for standard input)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the stored message and its delivery as protobuf JSON")
	return cmd
}

func (r *root) conversationsRetryReplyCmd() *cobra.Command {
	var (
		asJSON bool
		actor  string
	)
	cmd := &cobra.Command{
		Use:   "retry-reply OUTBOUND_ID",
		Short: "Send a failed reply again",
		Long: `Send a reply whose delivery failed again, once its cause is fixed (the
Sidekick app added to the Slack channel, a token renewed). If the failed
attempt did reach the provider, it is found there instead of being sent
twice.`,
		Example: `  sidekick conversations retry-reply o-5d1c`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := requireActor(actor)
			if err != nil {
				return err
			}
			var resp *triagev1.RetryOutboundResponse
			err = r.rpc(cmd.Context(), "retry reply "+args[0], func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = triagev1.NewConversationServiceClient(cc).RetryOutbound(ctx, &triagev1.RetryOutboundRequest{OutboundId: args[0], Actor: actor})
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp.GetDelivery()))
			}
			_, err = fmt.Fprintf(r.io.Stdout, "reply %s: %s (retry %d)\n", args[0], deliveryState(resp.GetDelivery()), resp.GetDelivery().GetRetry())
			return err
		},
	}
	r.actorFlag(cmd, &actor)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the delivery as protobuf JSON")
	return cmd
}

// deliveryState says where a reply stands, in words.
func deliveryState(d *triagev1.OutboundDelivery) string {
	switch d.GetState() {
	case triagev1.DeliveryState_DELIVERY_STATE_SENT:
		if d.GetPermalink() != "" {
			return "sent, " + d.GetPermalink()
		}
		return "sent"
	case triagev1.DeliveryState_DELIVERY_STATE_FAILED:
		return "failed: " + d.GetReason()
	}
	return "sending"
}

func (r *root) conversationsCloseCmd() *cobra.Command {
	var (
		asJSON        bool
		actor, reason string
	)
	cmd := &cobra.Command{
		Use:   "close ID [--reason resolved|spam|duplicate]",
		Short: "Close a conversation",
		Long: `Close a conversation. The reason is resolved (default), spam or duplicate.
A customer writing again reopens it.`,
		Example: `  sidekick conversations close c-8f2k
  sidekick conversations close c-9x1q --reason spam`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, ok := supportv1.CloseReason_value["CLOSE_REASON_"+enumName(reason)]
			if !ok || v == 0 {
				return fmt.Errorf("unknown close reason %q (resolved, spam, duplicate)", reason)
			}
			actor, err := requireActor(actor)
			if err != nil {
				return err
			}
			req := &triagev1.CloseRequest{Id: args[0], Reason: supportv1.CloseReason(v), Actor: actor}
			return r.changeConversation(cmd, "close "+args[0], asJSON,
				func(ctx context.Context, c triagev1.ConversationServiceClient) (*supportv1.Conversation, error) {
					resp, err := c.Close(ctx, req)
					return resp.GetConversation(), err
				},
				func(c *supportv1.Conversation) string {
					return fmt.Sprintf("conversation %s closed (%s)", c.GetId(), short(c.GetCloseReason().String(), "CLOSE_REASON_"))
				})
		},
	}
	r.actorFlag(cmd, &actor)
	cmd.Flags().StringVar(&reason, "reason", "resolved", "resolved, spam or duplicate")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the conversation as protobuf JSON")
	return cmd
}

func (r *root) conversationsReopenCmd() *cobra.Command {
	var (
		asJSON bool
		actor  string
	)
	cmd := &cobra.Command{
		Use:   "reopen ID",
		Short: "Reopen a closed conversation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := requireActor(actor)
			if err != nil {
				return err
			}
			req := &triagev1.ReopenRequest{Id: args[0], Actor: actor}
			return r.changeConversation(cmd, "reopen "+args[0], asJSON,
				func(ctx context.Context, c triagev1.ConversationServiceClient) (*supportv1.Conversation, error) {
					resp, err := c.Reopen(ctx, req)
					return resp.GetConversation(), err
				},
				func(c *supportv1.Conversation) string {
					return fmt.Sprintf("conversation %s reopened (%s)", c.GetId(), short(c.GetStatus().String(), "CONVERSATION_STATUS_"))
				})
		},
	}
	r.actorFlag(cmd, &actor)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the conversation as protobuf JSON")
	return cmd
}

func (r *root) conversationsEscalateCmd() *cobra.Command {
	var (
		asJSON              bool
		actor, reason, team string
	)
	cmd := &cobra.Command{
		Use:   "escalate ID --reason R [--team T]",
		Short: "Escalate a conversation to a team's secondary on-call",
		Long: `Escalate to the secondary on-call: when swamped, lacking the knowledge (most
often deployments) or stuck. Without --team the notifier picks the team from
the conversation (its owning team, then its category). The reason is sent
with the page.`,
		Example: `  sidekick conversations escalate c-8f2k --reason "helm upgrade fails on 1.30; need Platform" --team platform`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return errors.New("--reason is required: say why you escalate")
			}
			actor, err := requireActor(actor)
			if err != nil {
				return err
			}
			req := &triagev1.EscalateRequest{Id: args[0], Reason: strings.TrimSpace(reason), Team: team, Actor: actor}
			return r.changeConversation(cmd, "escalate "+args[0], asJSON,
				func(ctx context.Context, c triagev1.ConversationServiceClient) (*supportv1.Conversation, error) {
					resp, err := c.Escalate(ctx, req)
					return resp.GetConversation(), err
				},
				func(c *supportv1.Conversation) string {
					to := team
					if to == "" {
						to = c.GetTeam()
					}
					if to == "" {
						return fmt.Sprintf("conversation %s escalated: %s", c.GetId(), req.GetReason())
					}
					return fmt.Sprintf("conversation %s escalated to team %s: %s", c.GetId(), to, req.GetReason())
				})
		},
	}
	r.actorFlag(cmd, &actor)
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	cmd.Flags().StringVar(&team, "team", "", "team whose secondary on-call gets it (default: chosen by the conversation)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the conversation as protobuf JSON")
	return cmd
}

// trimAll trims each value and drops empty ones.
func trimAll(in []string) []string {
	var out []string
	for _, v := range in {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
