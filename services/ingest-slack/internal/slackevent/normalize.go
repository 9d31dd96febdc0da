package slackevent

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slacktext"
)

// Reasons Classify gives for an event it drops on purpose. They are metric
// labels ("ignored_" + reason), so the set is closed.
const (
	// IgnoredEnvelope: an envelope type other than event_callback that
	// needs no answer beyond 200 (app_rate_limited, unknown types).
	IgnoredEnvelope = "envelope"
	// IgnoredEvent: an inner event type other than message and app_mention.
	IgnoredEvent = "event"
	// IgnoredChannel: a message outside the intake channels.
	IgnoredChannel = "channel"
	// IgnoredSubtype: channel housekeeping (channel_join, channel_leave,
	// topic and purpose changes, pins, message_replied, …).
	IgnoredSubtype = "subtype"
	// IgnoredSelf: a message posted or edited by this app itself, other
	// than a reply to a customer (which is published, marked with its
	// outbound id, so triage recognises its own reply).
	IgnoredSelf = "self"
	// IgnoredUnchanged: a message_changed whose text and files did not
	// change (link unfurls, reply counts).
	IgnoredUnchanged = "unchanged"
	// IgnoredMention: an app_mention in an intake channel, where the
	// message event of the same message is published instead.
	IgnoredMention = "mention"
)

// Options tune Classify.
type Options struct {
	// Channels is the intake allow-list of channel ids; empty accepts every
	// channel the app receives messages from.
	Channels map[string]bool
}

func (o Options) intake(channel string) bool {
	return len(o.Channels) == 0 || o.Channels[channel]
}

// Sender is who wrote a message, as the event tells.
type Sender struct {
	User     string
	BotID    string
	AppID    string
	Username string
	// Team is the sender's workspace when the event says (user_team,
	// user_profile.team or team).
	Team    string
	Profile *UserProfile
	Bot     *BotProfile
	IsBot   bool
}

// Item is a message event worth publishing, before the author's profile
// and the permalink are resolved.
type Item struct {
	EventID string
	// Label is the bounded event type used in metrics.
	Label       string
	Kind        supportv1.MessageKind
	Team        string
	Channel     string
	ChannelType string
	// TS is the message's own ts: the source id edits and deletes refer to.
	TS string
	// RootTS is the ts of the thread's root message.
	RootTS     string
	Sender     Sender
	Text       string
	Files      []File
	SentAt     time.Time
	EventType  string
	Subtype    string
	ExtShared  bool
	Mention    bool
	IsTopLevel bool
	// OutboundID is set on the echo of a reply Sidekick posted: the
	// OutboundMessage id from the message's metadata.
	OutboundID string
}

// ThreadKey is the key of a conversation thread: workspace, channel and the
// ts of the root message, so a root message and its replies share it.
func ThreadKey(team, channel, rootTS string) string {
	return "slack:" + team + "/" + channel + "/" + rootTS
}

// MessageID is the InboundMessage id (and Nats-Msg-Id) of an Events API
// delivery. Slack keeps event_id across its retries.
func MessageID(eventID string) string { return "slack:" + eventID }

// Label returns the metric label of an envelope: its inner event type, or
// the message subtype for messages, from a closed set.
func Label(env *Envelope) string {
	if env == nil {
		return "unknown"
	}
	switch env.Type {
	case TypeURLVerification, TypeAppRateLimited:
		return env.Type
	case TypeEventCallback:
	default:
		return "other"
	}
	if env.Event == nil {
		return "none"
	}
	switch env.Event.Type {
	case "app_mention":
		return "app_mention"
	case "message":
		switch st := env.Event.Subtype; st {
		case "":
			return "message"
		case "file_share", "thread_broadcast", "me_message", "bot_message",
			"message_changed", "message_deleted", "channel_join", "channel_leave", "message_replied":
			return st
		}
		return "message_other"
	}
	return "other"
}

// Classify decides what to do with an envelope: publish the returned Item,
// drop it for the returned reason (one of the Ignored constants), or
// dead-letter it (an error wrapping ErrUnprocessable).
func Classify(env *Envelope, opts Options) (*Item, string, error) {
	if env.Type != TypeEventCallback {
		return nil, IgnoredEnvelope, nil
	}
	ev := env.Event
	if ev == nil {
		return nil, "", fmt.Errorf("%w: event_callback without event", ErrUnprocessable)
	}
	if ev.Type != "message" && ev.Type != "app_mention" {
		return nil, IgnoredEvent, nil
	}
	if env.EventID == "" {
		return nil, "", fmt.Errorf("%w: %s without event_id", ErrUnprocessable, ev.Type)
	}
	if env.TeamID == "" {
		return nil, "", fmt.Errorf("%w: %s without team_id", ErrUnprocessable, ev.Type)
	}
	if ev.Channel == "" {
		return nil, "", fmt.Errorf("%w: %s without channel", ErrUnprocessable, ev.Type)
	}
	it := &Item{
		EventID: env.EventID, Label: Label(env), Team: env.TeamID, Channel: ev.Channel,
		ChannelType: ev.ChannelType, EventType: ev.Type, Subtype: ev.Subtype, ExtShared: env.IsExtSharedChannel,
	}
	if ev.Type == "app_mention" {
		// A mention in an intake channel also arrives as a message event
		// with its own event_id; publishing both would store the message
		// twice. Elsewhere the mention is how a thread is brought in.
		if opts.intake(ev.Channel) {
			return nil, IgnoredMention, nil
		}
		it.Mention = true
		return done(it, it.posted(&ev.Message))
	}
	if !opts.intake(ev.Channel) {
		return nil, IgnoredChannel, nil
	}
	switch ev.Subtype {
	case "", "file_share", "thread_broadcast", "me_message", "bot_message":
		if isSelf(env, &ev.Message) {
			// Our own post. A reply to a customer is published, marked,
			// so that triage matches it to the staff message it already
			// has; anything else we post (notifications, the mirror) is
			// not a message of the thread.
			if it.OutboundID = ev.ReplyID(); it.OutboundID == "" {
				return nil, IgnoredSelf, nil
			}
		}
		return done(it, it.posted(&ev.Message))
	case "message_changed":
		m := ev.Changed
		if m == nil || m.TS == "" {
			return nil, "", fmt.Errorf("%w: message_changed without message.ts", ErrUnprocessable)
		}
		if isSelf(env, m) {
			return nil, IgnoredSelf, nil
		}
		if m.Subtype == "tombstone" {
			// A thread root deleted while it has replies stays as a
			// tombstone: for us the message is gone.
			return done(it, it.deleted(m.TS, ev.Previous, ev.TS))
		}
		if p := ev.Previous; p != nil && p.Text == m.Text && sameFiles(p.Files, m.Files) {
			return nil, IgnoredUnchanged, nil
		}
		return done(it, it.edited(m, ev.TS))
	case "message_deleted":
		if ev.DeletedTS == "" {
			return nil, "", fmt.Errorf("%w: message_deleted without deleted_ts", ErrUnprocessable)
		}
		if ev.Previous != nil && isSelf(env, ev.Previous) {
			return nil, IgnoredSelf, nil
		}
		return done(it, it.deleted(ev.DeletedTS, ev.Previous, ev.TS))
	}
	return nil, IgnoredSubtype, nil
}

func done(it *Item, err error) (*Item, string, error) {
	if err != nil {
		return nil, "", err
	}
	return it, "", nil
}

func (it *Item) posted(m *Message) error {
	if m.TS == "" {
		return fmt.Errorf("%w: %s without ts", ErrUnprocessable, it.Label)
	}
	sent, err := ParseTS(m.TS)
	if err != nil {
		return err
	}
	it.Kind = supportv1.MessageKind_MESSAGE_KIND_POSTED
	it.TS, it.RootTS = m.TS, root(m.ThreadTS, m.TS)
	it.IsTopLevel = it.RootTS == m.TS
	it.Sender, it.Text, it.Files, it.SentAt = sender(m), m.Text, m.Files, sent
	return nil
}

func (it *Item) edited(m *Message, eventTS string) error {
	if _, err := ParseTS(m.TS); err != nil {
		return err
	}
	at := eventTS
	if m.Edited != nil && m.Edited.TS != "" {
		at = m.Edited.TS
	}
	sent, err := ParseTS(at)
	if err != nil {
		return err
	}
	it.Kind = supportv1.MessageKind_MESSAGE_KIND_EDITED
	it.TS, it.RootTS = m.TS, root(m.ThreadTS, m.TS)
	it.Sender, it.Text, it.Files, it.SentAt = sender(m), m.Text, m.Files, sent
	return nil
}

func (it *Item) deleted(ts string, prev *Message, eventTS string) error {
	if _, err := ParseTS(ts); err != nil {
		return err
	}
	sent, err := ParseTS(eventTS)
	if err != nil {
		return err
	}
	it.Kind = supportv1.MessageKind_MESSAGE_KIND_DELETED
	it.TS, it.RootTS, it.SentAt = ts, ts, sent
	if prev != nil {
		it.RootTS = root(prev.ThreadTS, ts)
		it.Sender = sender(prev)
	}
	return nil
}

func root(threadTS, ts string) string {
	if threadTS != "" {
		return threadTS
	}
	return ts
}

func sender(m *Message) Sender {
	s := Sender{User: m.User, BotID: m.BotID, AppID: m.AppID, Username: m.Username, Profile: m.UserProfile, Bot: m.BotProfile}
	s.IsBot = m.BotID != "" || m.Subtype == "bot_message"
	for _, t := range []string{m.UserTeam, profileTeam(m.UserProfile), m.Team} {
		if t != "" {
			s.Team = t
			break
		}
	}
	return s
}

func profileTeam(p *UserProfile) string {
	if p == nil {
		return ""
	}
	return p.Team
}

// isSelf reports whether m was posted by this app: its app id, or its bot
// user named in the envelope's authorizations.
func isSelf(env *Envelope, m *Message) bool {
	if env.APIAppID != "" && (m.AppID == env.APIAppID || (m.BotProfile != nil && m.BotProfile.AppID == env.APIAppID)) {
		return true
	}
	if m.User == "" {
		return false
	}
	for _, a := range env.Authorizations {
		if a.IsBot && a.UserID == m.User {
			return true
		}
	}
	return false
}

func sameFiles(a, b []File) bool {
	return slices.EqualFunc(a, b, func(x, y File) bool { return x.ID == y.ID })
}

// Profile is what users.info says about a sender.
type Profile struct {
	ID                string
	TeamID            string
	Name              string
	RealName          string
	DisplayName       string
	Email             string
	IsBot             bool
	IsRestricted      bool
	IsUltraRestricted bool
	IsStranger        bool
}

// Author decides who wrote the message. ourTeam is our own workspace.
//
// Bots (a bot_id, the bot_message subtype, or a bot user) are role bot.
// With a profile from users.info, staff are members of our workspace who
// are not guests; guests (is_restricted, is_ultra_restricted), users of
// another workspace (Slack Connect) and strangers are customers. Without a
// profile the event's own facts decide: a sender from another workspace,
// or a profile marked restricted, is a customer; one from ours is staff; an
// unknown workspace is a customer, so that a message is never taken for a
// reply that stops a response clock. A sender the event does not name (a
// deletion without previous_message) has no role.
func Author(s Sender, p *Profile, ourTeam string) *supportv1.Author {
	a := &supportv1.Author{Id: s.User, Organisation: s.Team}
	if s.User == "" && s.BotID == "" && !s.IsBot {
		// A deletion Slack sent without the deleted message: nobody to
		// name, and no role to claim.
		return a
	}
	if s.IsBot || (p != nil && p.IsBot) {
		a.Role = supportv1.AuthorRole_AUTHOR_ROLE_BOT
		if a.Id == "" {
			a.Id = s.BotID
		}
		switch {
		case s.Bot != nil && s.Bot.Name != "":
			a.Name = s.Bot.Name
		case s.Username != "":
			a.Name = s.Username
		case p != nil:
			a.Name = firstNonEmpty(p.RealName, p.Name)
		}
		a.Handle = firstNonEmpty(s.Username, a.Name)
		return a
	}
	if p != nil {
		a.Name = firstNonEmpty(p.RealName, p.DisplayName, p.Name)
		a.Handle = firstNonEmpty(p.DisplayName, p.Name)
		a.Email = p.Email
		if p.TeamID != "" {
			a.Organisation = p.TeamID
		}
		external := p.IsStranger || (p.TeamID != "" && ourTeam != "" && p.TeamID != ourTeam)
		guest := p.IsRestricted || p.IsUltraRestricted
		a.Role = supportv1.AuthorRole_AUTHOR_ROLE_STAFF
		if external || guest {
			a.Role = supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
		}
		return a
	}
	if pr := s.Profile; pr != nil {
		a.Name = firstNonEmpty(pr.RealName, pr.DisplayName, pr.Name)
		a.Handle = firstNonEmpty(pr.DisplayName, pr.Name)
	}
	a.Role = supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
	if s.Team != "" && s.Team == ourTeam && (s.Profile == nil || !(s.Profile.IsRestricted || s.Profile.IsUltraRestricted)) {
		a.Role = supportv1.AuthorRole_AUTHOR_ROLE_STAFF
	}
	return a
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// Permalink builds a link to the thread's root message. With the
// workspace's URL (https://acme.slack.com) it is the classic
// /archives/C/p<ts> form; without, the web client's thread view, which
// needs only ids.
func Permalink(workspaceURL, team, channel, rootTS string) string {
	if workspaceURL != "" {
		return strings.TrimRight(workspaceURL, "/") + "/archives/" + url.PathEscape(channel) + "/p" + strings.ReplaceAll(rootTS, ".", "")
	}
	return "https://app.slack.com/client/" + url.PathEscape(team) + "/" + url.PathEscape(channel) + "/thread/" + url.PathEscape(channel+"-"+rootTS)
}

// maxSubject bounds the subject taken from a thread's first message.
const maxSubject = 120

// Build assembles the InboundMessage of it.
func Build(it *Item, author *supportv1.Author, authorSource, permalink string, received time.Time) *supportv1.InboundMessage {
	m := &supportv1.InboundMessage{
		Id:         MessageID(it.EventID),
		Channel:    supportv1.Channel_CHANNEL_SLACK,
		SourceId:   it.TS,
		ThreadKey:  ThreadKey(it.Team, it.Channel, it.RootTS),
		Author:     author,
		Text:       slacktext.Decode(it.Text),
		SentAt:     timestamppb.New(it.SentAt),
		ReceivedAt: timestamppb.New(received),
		Permalink:  permalink,
		Kind:       it.Kind,
		Attributes: map[string]string{
			"team_id":    it.Team,
			"channel_id": it.Channel,
			"ts":         it.TS,
			"thread_ts":  it.RootTS,
			"event":      it.EventType,
		},
	}
	set := func(k, v string) {
		if v != "" {
			m.Attributes[k] = v
		}
	}
	set("subtype", it.Subtype)
	set("channel_type", it.ChannelType)
	set("author_source", authorSource)
	if it.ExtShared {
		m.Attributes["ext_shared"] = "true"
	}
	if it.Mention {
		m.Attributes["app_mention"] = "true"
	}
	set("outbound_id", it.OutboundID)
	if it.Kind == supportv1.MessageKind_MESSAGE_KIND_POSTED && it.IsTopLevel {
		m.Subject = subject(m.Text)
	}
	if it.RootTS != it.TS {
		m.References = []string{it.RootTS}
	}
	for _, f := range it.Files {
		m.Attachments = append(m.Attachments, &supportv1.Attachment{
			Name:        firstNonEmpty(f.Name, f.Title, f.ID),
			ContentType: f.Mimetype,
			SizeBytes:   f.Size,
			Url:         firstNonEmpty(f.Permalink, f.URLPrivate),
		})
	}
	return m
}

// subject is the first non-empty line of text, cut to maxSubject runes.
func subject(text string) string {
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if utf8.RuneCountInString(line) > maxSubject {
			r := []rune(line)
			line = string(r[:maxSubject-1]) + "…"
		}
		return line
	}
	return ""
}
