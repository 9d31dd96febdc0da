package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func (r *root) ackCmd() *cobra.Command {
	var (
		asJSON              bool
		conversation, actor string
	)
	cmd := &cobra.Command{
		Use:   "ack (NOTIFICATION_ID | --conversation ID)",
		Short: "Acknowledge a page or ping, which stops its escalation",
		Long: `Acknowledge one notification, or with --conversation every notification of
a conversation. Acknowledging stops the escalation: deliveries not yet sent
are cancelled. The acknowledgement records --actor (default $USER).
Acknowledging the page of an alert (a Sentry issue) also acknowledges the
alert in triage, from which the report measures its time to acknowledge.`,
		Example: `  sidekick ack ntf-01HZX3
  sidekick ack --conversation c-8f2k`,
		Args: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (conversation != "") || len(args) > 1 {
				return errors.New("give a NOTIFICATION_ID or --conversation ID (one of the two)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := requireActor(actor)
			if err != nil {
				return err
			}
			req := &notifyv1.AcknowledgeRequest{ConversationId: conversation, Actor: actor}
			what := "conversation " + conversation
			if len(args) == 1 {
				req.Id, what = args[0], "notification "+args[0]
			}
			var resp *notifyv1.AcknowledgeResponse
			err = r.rpc(cmd.Context(), "acknowledge "+what, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = notifyv1.NewNotifierServiceClient(cc).Acknowledge(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp))
			}
			if resp.GetAcknowledged() == 0 {
				_, err = fmt.Fprintf(r.io.Stdout, "nothing to acknowledge for %s (already acknowledged)\n", what)
				return err
			}
			_, err = fmt.Fprintf(r.io.Stdout, "acknowledged %d notification(s) for %s as %s\n", resp.GetAcknowledged(), what, actor)
			return err
		},
	}
	r.actorFlag(cmd, &actor)
	cmd.Flags().StringVar(&conversation, "conversation", "", "acknowledge every notification of this conversation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the response as protobuf JSON")
	return cmd
}

// parseRecipient reads one --to: a person id, "hero", "secondary:TEAM",
// "#channel" (Slack), or "person:ID" for a person whose id looks like one
// of the others.
func parseRecipient(s string) (*notifyv1.Recipient, error) {
	s = strings.TrimSpace(s)
	kind, rest, hasColon := strings.Cut(s, ":")
	switch {
	case s == "":
		return nil, errors.New("empty --to")
	case strings.HasPrefix(s, "#"):
		if len(s) == 1 {
			return nil, errors.New("--to #: name the Slack channel")
		}
		return &notifyv1.Recipient{Target: &notifyv1.Recipient_SlackChannel{SlackChannel: s}}, nil
	case strings.EqualFold(s, "hero"):
		return &notifyv1.Recipient{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "hero"}}}, nil
	case strings.EqualFold(s, "secondary") || (hasColon && strings.EqualFold(kind, "secondary")):
		if strings.TrimSpace(rest) == "" {
			return nil, fmt.Errorf("--to %s: name the team, as in secondary:platform", s)
		}
		return &notifyv1.Recipient{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "secondary", Team: strings.TrimSpace(rest)}}}, nil
	case hasColon && strings.EqualFold(kind, "person"):
		if strings.TrimSpace(rest) == "" {
			return nil, fmt.Errorf("--to %s: name the person", s)
		}
		return &notifyv1.Recipient{Target: &notifyv1.Recipient_Person{Person: strings.TrimSpace(rest)}}, nil
	case hasColon:
		return nil, fmt.Errorf("--to %s: want a person id, hero, secondary:TEAM or #channel", s)
	}
	return &notifyv1.Recipient{Target: &notifyv1.Recipient_Person{Person: s}}, nil
}

// recipientText renders a recipient the way --to takes it.
func recipientText(rc *notifyv1.Recipient) string {
	switch t := rc.GetTarget().(type) {
	case *notifyv1.Recipient_Person:
		return t.Person
	case *notifyv1.Recipient_SlackChannel:
		return t.SlackChannel
	case *notifyv1.Recipient_Role:
		if t.Role.GetTeam() != "" {
			return t.Role.GetRole() + ":" + t.Role.GetTeam()
		}
		return t.Role.GetRole()
	}
	return "?"
}

// parseLink reads "Title=https://…" or a bare URL.
func parseLink(s string) *notifyv1.Link {
	if title, url, ok := strings.Cut(s, "="); ok && !strings.Contains(title, "://") {
		return &notifyv1.Link{Title: strings.TrimSpace(title), Url: strings.TrimSpace(url)}
	}
	return &notifyv1.Link{Title: s, Url: s}
}

// newIdempotencyKey is a random key for a notification sent without --key.
func newIdempotencyKey() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return "cli-" + hex.EncodeToString(b[:])
}

func (r *root) notifyCmd() *cobra.Command {
	var (
		asJSON, page                   bool
		to, links                      []string
		text, title, key, conversation string
	)
	cmd := &cobra.Command{
		Use:   "notify --to PERSON|hero|secondary:TEAM|#channel --text T [--page] [--key K]",
		Short: "Ping or page a person, the Support Hero or a team's secondary on-call",
		Long: `Send a notification through the notifier. Each --to is a person id (see
'sidekick people'), hero (the Support Hero on duty), secondary:TEAM (that
team's secondary on-call) or #channel (a Slack channel); hero and secondary
are resolved through the rotation when sending. A ping goes by chat or email;
--page also goes to the paging service.

Notify is idempotent on its key: sending again with the same --key does not
send twice. Without --key a random key is made and printed, so a command that
timed out can be retried with it. --text "-" reads the text from standard
input.`,
		Example: `  sidekick notify --to hero --text "Stripe webhooks are failing, see #incidents"
  sidekick notify --to secondary:platform --page --text "EU cluster down" --key incident-2026-03-04
  sidekick notify --to alice --to #support --title "Handoff" --text - < handoff.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			text, err := r.readText(text)
			if err != nil {
				return err
			}
			if strings.TrimSpace(text) == "" && strings.TrimSpace(title) == "" {
				return errors.New("--text (or --title) is required")
			}
			req := &notifyv1.NotifyRequest{
				IdempotencyKey: strings.TrimSpace(key), Urgency: notifyv1.Urgency_URGENCY_LOW,
				Title: strings.TrimSpace(title), Text: text, ConversationId: conversation,
			}
			if req.IdempotencyKey == "" {
				req.IdempotencyKey = newIdempotencyKey()
			}
			if page {
				req.Urgency = notifyv1.Urgency_URGENCY_HIGH
			}
			for _, t := range to {
				rc, err := parseRecipient(t)
				if err != nil {
					return err
				}
				req.Recipients = append(req.Recipients, rc)
			}
			for _, l := range links {
				req.Links = append(req.Links, parseLink(l))
			}
			var resp *notifyv1.NotifyResponse
			err = r.rpc(cmd.Context(), "notify", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = notifyv1.NewNotifierServiceClient(cc).Notify(ctx, req)
				return err
			})
			if err != nil {
				if outcomeUnknown(err) {
					return fmt.Errorf("%w\nit may have been sent: retry with --key %s to avoid sending twice", err, req.GetIdempotencyKey())
				}
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp))
			}
			n := resp.GetNotification()
			if resp.GetCreated() {
				fmt.Fprintf(r.io.Stdout, "notification %s sent (%s, key %s)\n", n.GetId(), urgencyText(n.GetUrgency()), req.GetIdempotencyKey())
			} else {
				fmt.Fprintf(r.io.Stdout, "notification %s was already sent with key %s: not sent again\n", n.GetId(), req.GetIdempotencyKey())
			}
			return r.printDeliveries(n.GetDeliveries())
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&to, "to", nil, "recipient: person id, hero, secondary:TEAM or #channel (repeatable, required)")
	f.StringVar(&text, "text", "", `message text ("-" reads standard input)`)
	f.StringVar(&title, "title", "", "short title (subject line)")
	f.BoolVar(&page, "page", false, "page (high urgency) instead of a ping")
	f.StringVar(&key, "key", "", "idempotency key (default: a random one, printed)")
	f.StringVar(&conversation, "conversation", "", "conversation this is about")
	f.StringSliceVar(&links, "link", nil, `link to include: URL or "Title=URL" (repeatable)`)
	f.BoolVar(&asJSON, "json", false, "print the response as protobuf JSON")
	_ = cmd.MarkFlagRequired("to")
	cmd.AddCommand(r.notifyTestCmd())
	return cmd
}

func (r *root) notifyTestCmd() *cobra.Command {
	var (
		asJSON, ping bool
		person       string
	)
	cmd := &cobra.Command{
		Use:   "test [--person PERSON] [--ping]",
		Short: "Send a real test message through each of a person's ways of being told, and say what answered",
		Long: `Send a test message to a person (default: you, $USER) at once through every
channel of their contact rules (escalation.contact_rules in the organisation
file; the rules' delays and urgencies are left aside), or, for a person
without rules, through every channel that can reach them (Slack if they have
a Slack id, email, PagerDuty when configured). Webhooks get nothing. Then
print what each channel answered: delivered, failed with the provider's
reason, or pending (a temporary failure the notifier keeps retrying; follow
it with 'sidekick notification show ID').

The test is a page unless --ping, so PagerDuty really opens an alert (its
dedup key is the test notification's); acknowledge it with
'sidekick ack ID'. The exit status is 1 when a channel failed.`,
		Example: `  sidekick notify test
  sidekick notify test --person alice`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			who, err := requireActor(person)
			if err != nil {
				return errors.New("--person is required ($USER is not set)")
			}
			actor := strings.TrimSpace(r.opEnv().User)
			if actor == "" {
				actor = "sidekick notify test"
			}
			req := &notifyv1.NotifyRequest{
				IdempotencyKey: "test-" + newIdempotencyKey(), Urgency: notifyv1.Urgency_URGENCY_HIGH, Test: true,
				Title:      "Sidekick test message for " + who,
				Text:       fmt.Sprintf("A test of how Sidekick reaches %s, sent by %s with 'sidekick notify test'. Nothing needs doing.", who, actor),
				Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Person{Person: who}}},
			}
			if ping {
				req.Urgency = notifyv1.Urgency_URGENCY_LOW
			}
			var resp *notifyv1.NotifyResponse
			err = r.rpc(cmd.Context(), "test "+who, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = notifyv1.NewNotifierServiceClient(cc).Notify(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp))
			}
			n := resp.GetNotification()
			fmt.Fprintf(r.io.Stdout, "test %s %s sent to %s\n", urgencyText(n.GetUrgency()), n.GetId(), who)
			if err := r.printDeliveries(n.GetDeliveries()); err != nil {
				return err
			}
			return testVerdict(r.io.Stdout, who, n)
		},
	}
	f := cmd.Flags()
	f.StringVar(&person, "person", r.opEnv().User, "whose ways of being told to test (default $USER)")
	f.BoolVar(&ping, "ping", false, "test as a ping rather than a page")
	f.BoolVar(&asJSON, "json", false, "print the response as protobuf JSON")
	return cmd
}

// testVerdict sums up a test: which channels answered, which are still
// being retried, and an error naming those that failed.
func testVerdict(w io.Writer, who string, n *notifyv1.Notification) error {
	var ok, pending, failed []string
	for _, d := range n.GetDeliveries() {
		switch d.GetStatus() {
		case supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED:
			ok = append(ok, d.GetChannel())
		case supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED:
			failed = append(failed, d.GetChannel())
		default:
			pending = append(pending, d.GetChannel())
		}
	}
	switch {
	case len(ok)+len(pending)+len(failed) == 0:
		return fmt.Errorf("no channel of this notifier can reach %s: give them a slack id or an email, or contact rules", who)
	case len(ok) > 0:
		fmt.Fprintf(w, "answered: %s\n", strings.Join(ok, ", "))
	}
	if len(pending) > 0 {
		fmt.Fprintf(w, "still trying: %s (sidekick notification show %s)\n", strings.Join(pending, ", "), n.GetId())
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s could not be reached through %s", who, strings.Join(failed, ", "))
	}
	return nil
}

// outcomeUnknown says whether a failed call may have taken effect anyway
// (a timeout, a dropped connection), so retrying needs the same key.
func outcomeUnknown(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown, codes.Internal:
		return true
	}
	return false
}

func urgencyText(u notifyv1.Urgency) string {
	if u == notifyv1.Urgency_URGENCY_HIGH {
		return "page"
	}
	return "ping"
}

// printDeliveries renders the delivery log of a notification.
func (r *root) printDeliveries(ds []*supportv1.DeliveryEvent) error {
	if len(ds) == 0 {
		_, err := fmt.Fprintln(r.io.Stdout, "no deliveries yet")
		return err
	}
	loc := r.location()
	tw := tabwriter.NewWriter(r.io.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPIENT\tCHANNEL\tSTATUS\tATTEMPTS\tAT\tERROR")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", dash(d.GetRecipient()), dash(d.GetChannel()),
			short(d.GetStatus().String(), "DELIVERY_STATUS_"), d.GetAttempt(), fmtTime(d.GetOccurredAt(), loc), dash(truncate(d.GetError(), 60)))
	}
	return tw.Flush()
}

func (r *root) notificationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "notification",
		Aliases: []string{"notifications"},
		Short:   "Look at notifications and their delivery log",
	}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a notification: what was sent to whom, each delivery, the acknowledgement",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var resp *notifyv1.GetNotificationResponse
			err := r.rpc(cmd.Context(), "get notification "+args[0], func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = notifyv1.NewNotifierServiceClient(cc).GetNotification(ctx, &notifyv1.GetNotificationRequest{Id: args[0]})
				return err
			})
			if err != nil {
				return err
			}
			n := resp.GetNotification()
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(n))
			}
			return r.printNotification(n)
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print protobuf JSON")
	cmd.AddCommand(show)
	return cmd
}

func (r *root) printNotification(n *notifyv1.Notification) error {
	loc := r.location()
	w := r.io.Stdout
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("ID", n.GetId())
	row("Key", dash(n.GetIdempotencyKey()))
	row("Urgency", urgencyText(n.GetUrgency()))
	var to []string
	seen := map[string]bool{}
	for _, d := range n.GetDeliveries() {
		if r := d.GetRecipient(); r != "" && !seen[r] {
			seen[r] = true
			to = append(to, r)
		}
	}
	row("To", joinOr(to))
	row("Conversation", dash(n.GetConversationId()))
	row("Created", fmtTime(n.GetCreatedAt(), loc))
	ack := "no"
	if n.GetAcknowledgedAt() != nil {
		ack = fmtTime(n.GetAcknowledgedAt(), loc) + " by " + dash(n.GetAcknowledgedBy())
	}
	row("Acknowledged", ack)
	row("Title", dash(n.GetTitle()))
	if err := tw.Flush(); err != nil {
		return err
	}
	if n.GetText() != "" {
		fmt.Fprintln(w, "Text:")
		writeIndented(w, n.GetText())
	}
	fmt.Fprintln(w)
	return r.printDeliveries(n.GetDeliveries())
}
