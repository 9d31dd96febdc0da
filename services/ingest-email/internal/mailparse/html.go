package mailparse

import (
	"strings"

	"golang.org/x/net/html"
)

// HTMLToText renders HTML mail as plain text: block elements become line
// breaks, scripts and styles are dropped, links keep their address, and
// blockquotes are marked with "> " so quoted history can be trimmed the
// same way as in plain text.
func HTMLToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip := 0
	quote := 0
	atLineStart := true
	var href string
	newline := func() {
		b.WriteString("\n")
		atLineStart = true
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return collapseBlankLines(b.String())
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			switch tag {
			case "script", "style", "head", "title":
				if tt == html.StartTagToken {
					skip++
				}
			case "br":
				newline()
			case "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol":
				if !atLineStart {
					newline()
				}
				if tag == "li" {
					b.WriteString("- ")
					atLineStart = false
				}
			case "blockquote":
				if !atLineStart {
					newline()
				}
				quote++
			case "a":
				href = ""
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "href" {
						href = string(v)
					}
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head", "title":
				if skip > 0 {
					skip--
				}
			case "p", "div", "tr", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6":
				if !atLineStart {
					newline()
				}
			case "blockquote":
				if quote > 0 {
					quote--
				}
				if !atLineStart {
					newline()
				}
			case "a":
				if href != "" && strings.HasPrefix(href, "http") {
					b.WriteString(" (" + href + ")")
				}
				href = ""
			}
		case html.TextToken:
			if skip > 0 {
				continue
			}
			text := strings.Join(strings.Fields(html.UnescapeString(string(z.Text()))), " ")
			if text == "" {
				continue
			}
			if atLineStart && quote > 0 {
				b.WriteString(strings.Repeat("> ", quote))
			} else if !atLineStart {
				b.WriteString(" ")
			}
			b.WriteString(text)
			atLineStart = false
		}
	}
}

func collapseBlankLines(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}
