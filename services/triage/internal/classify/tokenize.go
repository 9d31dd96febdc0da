package classify

import (
	"regexp"
	"strings"
	"unicode"
)

// linkToken stands for one link in a text's features.
const linkToken = "_link_"

// maxFeatures bounds the distinct features taken from one document, so that
// a pasted stack trace or log cannot dominate the model.
const maxFeatures = 600

// Tokenizer turns text into the words rules match against and the features
// the model counts. Build it once with [NewTokenizer]; it is safe for
// concurrent use.
type Tokenizer struct {
	link *regexp.Regexp
	stop map[string]bool
}

// NewTokenizer returns the tokenizer used by rules and the model.
func NewTokenizer() *Tokenizer {
	stop := make(map[string]bool, len(stopWords))
	for _, w := range strings.Fields(stopWords) {
		stop[stem(w)] = true
	}
	return &Tokenizer{
		link: regexp.MustCompile(`(?i)\b(?:https?://|www\.)[^\s<>"')\]]+`),
		stop: stop,
	}
}

// Text is a tokenized document.
type Text struct {
	// Words are the normalized words in order, stop words included: the
	// sequence keyword rules match against.
	Words []string
	// Links is the number of links the text contained.
	Links int
}

// Tokenize splits text into normalized words: lowercase runs of Unicode
// letters and digits (an apostrophe inside a word is dropped, so "don't"
// is "dont"), each stemmed by [stem]. Links are removed and counted first.
func (tz *Tokenizer) Tokenize(text string) Text {
	links := tz.link.FindAllStringIndex(text, -1)
	if len(links) > 0 {
		text = tz.link.ReplaceAllString(text, " ")
	}
	var out Text
	out.Links = len(links)
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			out.Words = append(out.Words, stem(b.String()))
			b.Reset()
		}
	}
	for _, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		case (r == '\'' || r == '’') && b.Len() > 0:
			// keep "don't" as one word
		default:
			flush()
		}
	}
	flush()
	return out
}

// Features returns the model's features of a tokenized text: each word that
// is not a stop word, long number or overlong token, each pair of adjacent
// kept words joined by "_", and one link token per link (at most three),
// without duplicates (the model counts presence, not frequency).
func (tz *Tokenizer) Features(t Text) []string {
	seen := make(map[string]bool, 2*len(t.Words))
	var out []string
	add := func(f string) {
		if !seen[f] && len(out) < maxFeatures {
			seen[f] = true
			out = append(out, f)
		}
	}
	prev := ""
	for _, w := range t.Words {
		if tz.stop[w] || len(w) > 30 || (len(w) > 4 && isNumber(w)) {
			prev = ""
			continue
		}
		add(w)
		if prev != "" {
			add(prev + "_" + w)
		}
		prev = w
	}
	for i := range min(t.Links, 3) {
		add(linkToken + strings.Repeat("+", i))
	}
	return out
}

func isNumber(w string) bool {
	for _, r := range w {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// stem reduces plural forms so that "flags" matches "flag" and
// "recordings" matches "recording": a final "ies" becomes "y" and a final
// "s" is dropped, except after "s", "u" or "i" ("access", "status",
// "analysis") and in words of three letters or fewer.
func stem(w string) string {
	n := len(w)
	switch {
	case n <= 3:
		return w
	case strings.HasSuffix(w, "ies") && n > 4:
		return w[:n-3] + "y"
	case w[n-1] == 's' && !strings.ContainsRune("sui", rune(w[n-2])):
		return w[:n-1]
	}
	return w
}

// stopWords are dropped from the model's features (not from the words
// rules match). Negations and words that carry meaning in support messages
// ("not", "down", "up", "off") are kept.
const stopWords = `
a about above after again against all also am an and any are as at be
because been before being below between both but by can could did do does
doing during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just let me more
most my myself of on once only or other our ours ourselves out over own same
she should so some such than that the their theirs them themselves then
there these they this those through to too under until very was we were
what when where which while who whom why will with would you your yours
yourself yourselves hi hello hey thanks thank please regards cheers best
team guys folks ok okay im ive id get got
`
