// Package slacktext converts between Slack's message formatting (mrkdwn
// with &, < and > escaped, <url|label> links, <@U…> mentions) and the
// plain text with light formatting that Sidekick stores and staff write
// ([label](url) links, **bold**, _italic_, `code`, @U… mentions).
//
// Decode is applied to what customers write on the way in; Encode to
// replies on the way out. Decode(Encode(s)) gives s back, except for
// emphasis, which stays in Slack's form (*bold*, ~strike~).
package slacktext

import (
	"regexp"
	"strings"
)

// escaper escapes the three characters Slack wants as entities when they
// are not formatting.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// unescaper undoes escaper; &amp; last, so "&amp;lt;" stays "&lt;".
var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

var (
	// mdLink is a Markdown link to a web or mail address. < and > cannot
	// appear in an address (RFC 3986), so text holding them is no link and
	// stays plain, escaped, rather than an address Slack would cut short.
	mdLink = regexp.MustCompile(`\[([^\[\]\n]+)\]\(((?:https?://|mailto:)[^\s()<>]+)\)`)
	// mention is a Slack user id written after @, as Decode writes it.
	mention = regexp.MustCompile(`(^|[^\w<@])@([UW][A-Z0-9]{6,})\b`)
	// bold is Markdown's **bold**; Slack's is *bold*.
	bold = regexp.MustCompile(`\*\*([^*\n]+)\*\*`)
	// strike is Markdown's ~~strike~~; Slack's is ~strike~.
	strike = regexp.MustCompile(`~~([^~\n]+)~~`)
	// special is one of Slack's <…> forms.
	special = regexp.MustCompile(`<([^<>\n]+)>`)
)

// Encode turns text in the light formatting into Slack mrkdwn: &, < and >
// escaped, [label](url) as <url|label>, @U… as a mention, **bold** as
// *bold* and ~~strike~~ as ~strike~. @here, @channel and @everyone stay
// plain words: a reply never pings a whole customer channel.
func Encode(text string) string {
	var b strings.Builder
	last := 0
	for _, m := range mdLink.FindAllStringSubmatchIndex(text, -1) {
		b.WriteString(encodePlain(text[last:m[0]]))
		label, url := text[m[2]:m[3]], text[m[4]:m[5]]
		b.WriteString("<" + escapeURL(url) + "|" + escaper.Replace(strings.ReplaceAll(label, "|", "¦")) + ">")
		last = m[1]
	}
	b.WriteString(encodePlain(text[last:]))
	return b.String()
}

// Escape escapes &, < and > for mrkdwn, and nothing else: for names and
// subjects put inside formatting of our own.
func Escape(s string) string { return escaper.Replace(s) }

// encodePlain encodes text that holds no Markdown link.
func encodePlain(s string) string {
	s = escaper.Replace(s)
	s = bold.ReplaceAllString(s, "*$1*")
	s = strike.ReplaceAllString(s, "~$1~")
	return mention.ReplaceAllString(s, "$1<@$2>")
}

// escapeURL escapes a link target: an entity for & (Slack's own events
// carry it so) and a percent-escape for |, which would end the address.
// mdLink admits no < or >.
func escapeURL(u string) string {
	return strings.NewReplacer("&", "&amp;", "|", "%7C").Replace(u)
}

// Decode turns Slack mrkdwn into the light formatting: <url|label> becomes
// [label](url) (or the bare address when the label is the address), <url>
// the URL, <@U…> @U… (or @name for the old labelled form), <#C…|name>
// #name, <!here> @here, <!subteam^…|@team> @team, <!date^…|fallback> the
// fallback; &lt;, &gt; and &amp; become <, > and &. Emphasis (*bold*,
// _italic_, ~strike~) is kept as written.
func Decode(text string) string {
	if !strings.ContainsAny(text, "<&") {
		return text
	}
	var b strings.Builder
	last := 0
	for _, m := range special.FindAllStringSubmatchIndex(text, -1) {
		b.WriteString(unescaper.Replace(text[last:m[0]]))
		b.WriteString(decodeSpecial(text[m[2]:m[3]]))
		last = m[1]
	}
	b.WriteString(unescaper.Replace(text[last:]))
	return b.String()
}

// decodeSpecial decodes the inside of one <…>.
func decodeSpecial(inner string) string {
	target, label, labelled := strings.Cut(inner, "|")
	label = unescaper.Replace(label)
	switch {
	case strings.HasPrefix(target, "@"):
		if labelled && label != "" {
			return "@" + strings.TrimPrefix(label, "@")
		}
		return target
	case strings.HasPrefix(target, "#"):
		if labelled && label != "" {
			return "#" + label
		}
		return target
	case strings.HasPrefix(target, "!"):
		cmd := strings.TrimPrefix(target, "!")
		switch {
		case labelled && label != "":
			if strings.HasPrefix(cmd, "subteam^") && !strings.HasPrefix(label, "@") {
				return "@" + label
			}
			return label
		case cmd == "here" || cmd == "channel" || cmd == "everyone":
			return "@" + cmd
		case strings.HasPrefix(cmd, "subteam^"):
			return "@" + strings.TrimPrefix(cmd, "subteam^")
		}
		return "<" + unescaper.Replace(inner) + ">"
	}
	url := strings.NewReplacer("%7C", "|").Replace(unescaper.Replace(target))
	switch {
	case !labelled || label == "" || label == url:
		return url
	case strings.HasPrefix(url, "mailto:") && label == strings.TrimPrefix(url, "mailto:"):
		return label
	}
	return "[" + strings.ReplaceAll(label, "¦", "|") + "](" + url + ")"
}
