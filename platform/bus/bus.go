// Package bus is Sidekick's JetStream layer: the streams and subjects of
// the design, provisioning, a connection helper, a publisher that stamps
// CloudEvents binary-mode headers, a pull-consumer runner with retries and
// dead letters, and the dead-letter publisher itself.
//
// Every message on the bus carries ce-specversion, ce-type, ce-source,
// ce-id, ce-time and content-type: application/protobuf headers, and
// Nats-Msg-Id equal to ce-id, so JetStream's duplicate window drops quick
// retries of the same event.
package bus

import "strings"

// Stream names, each holding one subject tree of the design.
const (
	// StreamInbound holds normalized inbound messages: support.inbound.>.
	StreamInbound = "SUPPORT_INBOUND"
	// StreamConversations holds conversation events: support.conversation.>.
	StreamConversations = "SUPPORT_CONVERSATIONS"
	// StreamActions holds what people did: support.action.>.
	StreamActions = "SUPPORT_ACTIONS"
	// StreamRotation holds schedule events: support.rotation.>.
	StreamRotation = "SUPPORT_ROTATION"
	// StreamNotify holds delivery log events: support.notify.>.
	StreamNotify = "SUPPORT_NOTIFY"
	// StreamDeadLetter holds what could not be processed: support.deadletter.>.
	StreamDeadLetter = "SUPPORT_DEADLETTER"
	// StreamOutbound holds replies to send and their receipts:
	// support.outbound.>.
	StreamOutbound = "SUPPORT_OUTBOUND"
)

// Subject prefixes, one per stream.
const (
	subjectInbound      = "support.inbound."
	subjectConversation = "support.conversation."
	subjectAction       = "support.action."
	subjectRotation     = "support.rotation."
	subjectNotify       = "support.notify."
	subjectDeadLetter   = "support.deadletter."
	subjectOutbound     = "support.outbound."
)

// Header names of the CloudEvents binary mode and of dead letters.
const (
	HeaderSpecVersion   = "ce-specversion"
	HeaderType          = "ce-type"
	HeaderSource        = "ce-source"
	HeaderID            = "ce-id"
	HeaderTime          = "ce-time"
	HeaderContentType   = "content-type"
	HeaderErrorLocation = "error_location"
	HeaderError         = "error"

	// HeaderOriginalSubject is the subject a dead letter was first published on.
	HeaderOriginalSubject = "original_subject"
	// HeaderOriginalStream is the stream a dead letter was consumed from.
	HeaderOriginalStream = "original_stream"
	// HeaderOriginalSequence is the stream sequence of the dead-lettered message.
	HeaderOriginalSequence = "original_sequence"
	// HeaderDeliveryCount is how many times the message had been delivered
	// when it was dead-lettered.
	HeaderDeliveryCount = "delivery_count"
	// HeaderDataOmitted is set, to the original size in bytes, on a dead
	// letter stored without its data because it would not fit.
	HeaderDataOmitted = "data_omitted"
	// HeaderBodyTruncatedFrom is set, to the original size in bytes, on an
	// ingest-level dead letter that keeps only the first part of the
	// provider's raw request: such a request cannot be replayed.
	HeaderBodyTruncatedFrom = "body-truncated-from"
)

// SpecVersion is the CloudEvents version written in ce-specversion.
const SpecVersion = "1.0"

// ContentTypeProtobuf is the content-type of every payload on the bus.
const ContentTypeProtobuf = "application/protobuf"

// InboundSubject is the subject of a normalized message from a channel
// (slack, email, github, sentry).
func InboundSubject(channel string) string { return subjectInbound + token(channel) }

// ConversationSubject is the subject of a conversation event (opened,
// message, triaged, assigned, responded, escalated, deadline, closed,
// reopened, handoff).
func ConversationSubject(event string) string { return subjectConversation + token(event) }

// ActionSubject is the subject of an action a person took (ack, escalate,
// close, assign).
func ActionSubject(action string) string { return subjectAction + token(action) }

// RotationSubject is the subject of a schedule event (shift_started,
// shift_ended, override_created, override_deleted, gap_ahead).
func RotationSubject(event string) string { return subjectRotation + token(event) }

// NotifySubject is the subject of a delivery log event (delivered, failed,
// acked).
func NotifySubject(status string) string { return subjectNotify + token(status) }

// OutboundSubject is the subject of a reply to send on a channel (slack,
// email, github): an OutboundMessage, consumed by that channel's service.
func OutboundSubject(channel string) string { return subjectOutbound + token(channel) }

// OutboundReceiptSubject is the subject of the outcome of sending a reply
// on a channel: an OutboundReceipt, consumed by triage.
func OutboundReceiptSubject(channel string) string {
	return subjectOutbound + token(channel) + ".receipt"
}

// DeadLetterSubject is where a service's unprocessable input goes.
func DeadLetterSubject(service string) string { return subjectDeadLetter + token(service) }

// token makes s safe as one subject token: the separators and wildcards of
// NATS subjects and whitespace become '_'. Names from the design pass
// through unchanged.
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, s)
}

// Wildcard subjects matching every event of one stream, for consumers.
const (
	AllInbound       = subjectInbound + ">"
	AllConversations = subjectConversation + ">"
	AllActions       = subjectAction + ">"
	AllRotation      = subjectRotation + ">"
	AllNotify        = subjectNotify + ">"
	AllDeadLetters   = subjectDeadLetter + ">"
	// AllOutboundReceipts matches the receipts of every channel, not the
	// replies to send.
	AllOutboundReceipts = subjectOutbound + "*.receipt"
)
