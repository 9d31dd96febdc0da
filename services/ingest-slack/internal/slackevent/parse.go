// Package slackevent parses Slack Events API payloads and turns the events
// Sidekick cares about (messages, thread replies, edits, deletions, file
// shares, app mentions) into supportv1.InboundMessages. It does no I/O:
// the author's profile and the permalink are looked up by the caller and
// handed in.
package slackevent

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Envelope types of the Events API.
const (
	TypeURLVerification = "url_verification"
	TypeEventCallback   = "event_callback"
	TypeAppRateLimited  = "app_rate_limited"
)

// ErrMalformed is wrapped by Parse for a body that is not an Events API
// payload at all (not JSON, not an object, fields of the wrong type). The
// HTTP answer is 400.
var ErrMalformed = errors.New("malformed slack payload")

// ErrUnprocessable is wrapped by Classify for a well-formed payload that
// lacks what a message needs (an event id, a channel, a timestamp). It is
// dead-lettered, and Slack is told 200 so that it does not retry.
var ErrUnprocessable = errors.New("slack event cannot be normalized")

// Envelope is the outer Events API payload (the request body, or the
// payload of a Socket Mode events_api envelope).
type Envelope struct {
	Token     string `json:"token"`
	Type      string `json:"type"`
	Challenge string `json:"challenge"`
	TeamID    string `json:"team_id"`
	// ContextTeamID is the workspace the event happened in, for Slack
	// Connect and Enterprise Grid installations.
	ContextTeamID      string          `json:"context_team_id"`
	EnterpriseID       string          `json:"enterprise_id"`
	APIAppID           string          `json:"api_app_id"`
	EventID            string          `json:"event_id"`
	EventTime          int64           `json:"event_time"`
	IsExtSharedChannel bool            `json:"is_ext_shared_channel"`
	Authorizations     []Authorization `json:"authorizations"`
	Event              *Event          `json:"event"`
}

// Authorization is one installation the event is visible to.
type Authorization struct {
	TeamID string `json:"team_id"`
	UserID string `json:"user_id"`
	IsBot  bool   `json:"is_bot"`
}

// Message holds the fields shared by a message event and the message
// nested in message_changed (message) and message_deleted
// (previous_message).
type Message struct {
	Type        string       `json:"type"`
	Subtype     string       `json:"subtype"`
	User        string       `json:"user"`
	BotID       string       `json:"bot_id"`
	AppID       string       `json:"app_id"`
	Username    string       `json:"username"`
	Team        string       `json:"team"`
	UserTeam    string       `json:"user_team"`
	SourceTeam  string       `json:"source_team"`
	Text        string       `json:"text"`
	TS          string       `json:"ts"`
	ThreadTS    string       `json:"thread_ts"`
	ClientMsgID string       `json:"client_msg_id"`
	Files       []File       `json:"files"`
	BotProfile  *BotProfile  `json:"bot_profile"`
	UserProfile *UserProfile `json:"user_profile"`
	Edited      *Edited      `json:"edited"`
	// Metadata is the message metadata an app attached when posting; our
	// replies carry ReplyEventType with the outbound id.
	Metadata *Metadata `json:"metadata"`
}

// Metadata is Slack message metadata as the reply sender writes it.
type Metadata struct {
	EventType    string `json:"event_type"`
	EventPayload struct {
		OutboundID string `json:"outbound_id"`
	} `json:"event_payload"`
}

// ReplyEventType is the metadata event_type of a reply Sidekick posted; its
// event_payload holds "outbound_id", the OutboundMessage id.
const ReplyEventType = "sidekick_reply"

// MirrorEventType is the metadata event_type of Sidekick's posts in the
// support-channel mirror (headers and copies), which are messages of no
// thread: their events are dropped.
const MirrorEventType = "sidekick_mirror"

// ReplyID returns the outbound id of a reply Sidekick posted, from the
// message's metadata; "" for any other message.
func (m *Message) ReplyID() string {
	if m == nil || m.Metadata == nil || m.Metadata.EventType != ReplyEventType {
		return ""
	}
	return m.Metadata.EventPayload.OutboundID
}

// Event is the inner event of an event_callback.
type Event struct {
	Message
	Hidden      bool   `json:"hidden"`
	Channel     string `json:"channel"`
	ChannelType string `json:"channel_type"`
	EventTS     string `json:"event_ts"`
	// Changed is the edited message of a message_changed event.
	Changed *Message `json:"message"`
	// Previous is the message before an edit or deletion.
	Previous  *Message `json:"previous_message"`
	DeletedTS string   `json:"deleted_ts"`
}

// File is a shared file; only its metadata is kept.
type File struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Title      string `json:"title"`
	Mimetype   string `json:"mimetype"`
	Size       int64  `json:"size"`
	URLPrivate string `json:"url_private"`
	Permalink  string `json:"permalink"`
}

// BotProfile is attached to messages posted by apps.
type BotProfile struct {
	ID     string `json:"id"`
	AppID  string `json:"app_id"`
	Name   string `json:"name"`
	TeamID string `json:"team_id"`
}

// UserProfile is the sender's profile that Slack attaches to some message
// events (notably in shared channels).
type UserProfile struct {
	RealName          string `json:"real_name"`
	DisplayName       string `json:"display_name"`
	Name              string `json:"name"`
	Team              string `json:"team"`
	IsRestricted      bool   `json:"is_restricted"`
	IsUltraRestricted bool   `json:"is_ultra_restricted"`
}

// Edited marks an edited message.
type Edited struct {
	User string `json:"user"`
	TS   string `json:"ts"`
}

// decodeOptions make the decoder as lenient as Slack's own clients about
// what does not matter here (a repeated member: the last wins; invalid
// UTF-8 in text: replaced), and match members by their exact names, as
// Slack writes them.
var decodeOptions = json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// Parse decodes an Events API payload. Unknown fields are ignored; a body
// that is not a JSON object, or whose known fields have the wrong types,
// is ErrMalformed.
func Parse(body []byte) (*Envelope, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var env Envelope
	if err := json.Unmarshal(trimmed, &env, decodeOptions); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.Type == "" {
		return nil, fmt.Errorf("%w: no type", ErrMalformed)
	}
	return &env, nil
}

// ParseTS turns a Slack message timestamp ("1700000000.000100": Unix
// seconds, a dot, microseconds) into a time.
func ParseTS(ts string) (time.Time, error) {
	sec, frac, _ := strings.Cut(ts, ".")
	if sec == "" || len(sec) > 12 || len(frac) > 9 || strings.TrimLeft(sec, "0123456789") != "" || strings.TrimLeft(frac, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("%w: bad timestamp %q", ErrUnprocessable, ts)
	}
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: bad timestamp %q", ErrUnprocessable, ts)
	}
	var ns int64
	if frac != "" {
		n, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: bad timestamp %q", ErrUnprocessable, ts)
		}
		ns = n
	}
	return time.Unix(s, ns).UTC(), nil
}
