package fakes

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// GitHub delivers repository webhooks the way GitHub does: a JSON POST
// with X-GitHub-Event, X-GitHub-Delivery, X-GitHub-Hook-ID,
// X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the body keyed by
// the webhook secret) and a GitHub-Hookshot User-Agent.
type GitHub struct {
	// URL is the webhook URL, e.g. http://127.0.0.1:8080/github/webhook.
	URL    string
	Secret string
	// HookID is X-GitHub-Hook-ID; default "424242".
	HookID string
	// Client defaults to http.DefaultClient.
	Client *http.Client
}

// SignGitHub returns the X-Hub-Signature-256 of body.
func SignGitHub(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Send delivers one event (X-GitHub-Event, such as "issues") with the
// delivery id GitHub would have assigned, and returns the status code.
func (g GitHub) Send(ctx context.Context, event, delivery string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("fakes: github request: %w", err)
	}
	hook := g.HookID
	if hook == "" {
		hook = "424242"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/e2e0fake")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-GitHub-Hook-ID", hook)
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	req.Header.Set("X-Hub-Signature-256", SignGitHub(g.Secret, body))
	return do(g.Client, req)
}

// GitHubIssue describes an issue for the payload builders.
type GitHubIssue struct {
	// Repo is owner/name.
	Repo   string
	Number int
	// ID is the issue's database id; default derived from Number.
	ID    int64
	Title string
	Body  string
	// Login opened the issue; Association is their author_association
	// (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, …).
	Login       string
	Association string
	CreatedAt   time.Time
}

// GitHubComment is a comment on an issue.
type GitHubComment struct {
	ID          int64
	Login       string
	Association string
	Body        string
	CreatedAt   time.Time
}

// GitHubIssueOpened is the payload of an issues webhook with action
// "opened", shaped as GitHub documents it.
func GitHubIssueOpened(is GitHubIssue) []byte {
	return mustJSON(map[string]any{
		"action":       "opened",
		"issue":        issueJSON(is),
		"repository":   repoJSON(is.Repo),
		"organization": orgJSON(is.Repo),
		"sender":       userJSON(is.Login),
	})
}

// GitHubIssueCommentCreated is the payload of an issue_comment webhook
// with action "created" for a comment on is.
func GitHubIssueCommentCreated(is GitHubIssue, c GitHubComment) []byte {
	issue := issueJSON(is)
	issue["comments"] = 1
	apiIssue := "https://api.github.com/repos/" + is.Repo + "/issues/" + fmt.Sprint(is.Number)
	return mustJSON(map[string]any{
		"action": "created",
		"issue":  issue,
		"comment": map[string]any{
			"url":                      "https://api.github.com/repos/" + is.Repo + "/issues/comments/" + fmt.Sprint(c.ID),
			"html_url":                 issue["html_url"].(string) + "#issuecomment-" + fmt.Sprint(c.ID),
			"issue_url":                apiIssue,
			"id":                       c.ID,
			"node_id":                  fmt.Sprintf("IC_kwDOfake%d", c.ID),
			"user":                     userJSON(c.Login),
			"created_at":               stamp(c.CreatedAt),
			"updated_at":               stamp(c.CreatedAt),
			"author_association":       c.Association,
			"body":                     c.Body,
			"reactions":                map[string]any{"total_count": 0},
			"performed_via_github_app": nil,
		},
		"repository":   repoJSON(is.Repo),
		"organization": orgJSON(is.Repo),
		"sender":       userJSON(c.Login),
	})
}

func issueJSON(is GitHubIssue) map[string]any {
	id := is.ID
	if id == 0 {
		id = 2000000000 + int64(is.Number)
	}
	api := "https://api.github.com/repos/" + is.Repo + "/issues/" + fmt.Sprint(is.Number)
	return map[string]any{
		"url":                api,
		"repository_url":     "https://api.github.com/repos/" + is.Repo,
		"labels_url":         api + "/labels{/name}",
		"comments_url":       api + "/comments",
		"events_url":         api + "/events",
		"html_url":           "https://github.com/" + is.Repo + "/issues/" + fmt.Sprint(is.Number),
		"id":                 id,
		"node_id":            fmt.Sprintf("I_kwDOfake%d", id),
		"number":             is.Number,
		"title":              is.Title,
		"user":               userJSON(is.Login),
		"labels":             []any{},
		"state":              "open",
		"locked":             false,
		"assignee":           nil,
		"assignees":          []any{},
		"milestone":          nil,
		"comments":           0,
		"created_at":         stamp(is.CreatedAt),
		"updated_at":         stamp(is.CreatedAt),
		"closed_at":          nil,
		"author_association": is.Association,
		"active_lock_reason": nil,
		"body":               is.Body,
		"state_reason":       nil,
		"timeline_url":       api + "/timeline",
	}
}

func userJSON(login string) map[string]any {
	var id int64
	for _, r := range login {
		id = id*31 + int64(r)
	}
	if id < 0 {
		id = -id
	}
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return map[string]any{
		"login": login, "id": id % 100000000, "node_id": fmt.Sprintf("U_fake%d", id%100000000),
		"avatar_url": "https://avatars.githubusercontent.com/u/1?v=4", "gravatar_id": "",
		"url": "https://api.github.com/users/" + login, "html_url": "https://github.com/" + login,
		"type": typ, "site_admin": false,
	}
}

func repoJSON(full string) map[string]any {
	owner, name, _ := strings.Cut(full, "/")
	return map[string]any{
		"id": 700000001, "node_id": "R_kgDOfake", "name": name, "full_name": full, "private": false,
		"owner":    userJSON(owner),
		"html_url": "https://github.com/" + full, "description": "", "fork": false,
		"url":            "https://api.github.com/repos/" + full,
		"default_branch": "main", "has_issues": true, "has_discussions": false,
	}
}

func orgJSON(full string) map[string]any {
	owner, _, _ := strings.Cut(full, "/")
	return map[string]any{"login": owner, "id": 900000001, "node_id": "O_kgDOfake", "url": "https://api.github.com/orgs/" + owner, "description": ""}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Format(time.RFC3339)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakes: encode payload: %v", err)) // only maps of plain values
	}
	return b
}

// do sends req and returns the status code, draining the body so the
// connection is reused.
func do(c *http.Client, req *http.Request) (int, error) {
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fakes: %s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
