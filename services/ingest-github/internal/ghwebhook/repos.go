package ghwebhook

import (
	"fmt"
	"strings"
)

// Repositories is the allow-list of repositories with their priority
// hints. The zero value allows every repository, without hints.
type Repositories struct {
	hints map[string]string // lower-case "owner/repo" -> hint ("" for none)
}

// ParseRepositories reads a list such as "acme/main:high,acme/docs":
// comma-separated "owner/repo", each optionally followed by ":hint". An
// empty string allows every repository.
func ParseRepositories(s string) (Repositories, error) {
	var r Repositories
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, hint, _ := strings.Cut(item, ":")
		name, hint = strings.TrimSpace(name), strings.TrimSpace(hint)
		owner, repo, ok := strings.Cut(name, "/")
		if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
			return Repositories{}, fmt.Errorf("repository %q: want owner/repo[:priority]", item)
		}
		if r.hints == nil {
			r.hints = map[string]string{}
		}
		r.hints[strings.ToLower(name)] = hint
	}
	return r, nil
}

// Lookup reports whether fullName ("owner/repo", any case) is allowed and
// its priority hint.
func (r Repositories) Lookup(fullName string) (hint string, ok bool) {
	if r.hints == nil {
		return "", true
	}
	hint, ok = r.hints[strings.ToLower(fullName)]
	return hint, ok
}

// Len is the number of listed repositories; 0 means all are allowed.
func (r Repositories) Len() int { return len(r.hints) }
