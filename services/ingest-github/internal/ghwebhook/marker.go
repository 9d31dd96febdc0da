package ghwebhook

import (
	"regexp"
	"strings"
)

// The marker is how a comment Sidekick posted names its reply: an HTML
// comment at the end of the body, invisible on GitHub, carrying the
// OutboundMessage id. The reply sender looks for it before posting a reply
// a second time, and Normalize turns it into the outbound_id attribute of
// the comment's webhook, so triage recognises its own reply.
const (
	markerPrefix = "<!-- sidekick:outbound:"
	markerSuffix = " -->"
)

var markerRE = regexp.MustCompile(`\n*<!-- sidekick:outbound:([A-Za-z0-9_-]{1,128}) -->\s*$`)

// ReplyMarker is the marker of the reply with the given outbound id.
func ReplyMarker(outboundID string) string { return markerPrefix + outboundID + markerSuffix }

// WithReplyMarker is a comment body: text, then the marker after a blank
// line.
func WithReplyMarker(text, outboundID string) string {
	return strings.TrimRight(text, "\n") + "\n\n" + ReplyMarker(outboundID)
}

// ReplyID returns the outbound id of a comment body ending in a marker and
// the body without it; "" and the body unchanged for any other comment.
func ReplyID(body string) (id, text string) {
	m := markerRE.FindStringSubmatchIndex(body)
	if m == nil {
		return "", body
	}
	return body[m[2]:m[3]], body[:m[0]]
}
