// Package ghreply sends replies to customers as GitHub comments: on an
// issue or pull request through the REST API (POST
// /repos/{owner}/{repo}/issues/{number}/comments), on a discussion through
// the GraphQL API (addDiscussionComment), authenticated with a token or a
// GitHub App installation token (see Tokens).
//
// Every comment ends in a hidden marker with the outbound id
// (ghwebhook.WithReplyMarker). Before a reply is posted a second time, Find
// reads the thread's comments since the interrupted attempt for that
// marker; the webhook of our own comment carries it back to ingest-github,
// which marks the message for triage.
package ghreply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sidekickhq/sidekick/platform/outbound"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-github/internal/ghwebhook"
)

// TokenSource hands out the token of each API call.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Channel is the GitHub side of outbound.Runner.
type Channel struct {
	// APIURL is the REST base, https://api.github.com (or a GitHub
	// Enterprise Server's https://host/api/v3).
	APIURL string
	// GraphQLURL is the GraphQL endpoint; default APIURL + "/graphql".
	GraphQLURL string
	Tokens     TokenSource
	// HTTP defaults to a client with a 30-second timeout.
	HTTP *http.Client
}

var _ outbound.Channel = (*Channel)(nil)

func (c *Channel) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *Channel) graphQLURL() string {
	if c.GraphQLURL != "" {
		return c.GraphQLURL
	}
	return strings.TrimRight(c.APIURL, "/") + "/graphql"
}

// Send posts m as a comment.
func (c *Channel) Send(ctx context.Context, m *supportv1.OutboundMessage, reached func(context.Context) error) (outbound.Sent, error) {
	t := m.GetGithub()
	body := ghwebhook.WithReplyMarker(m.GetText(), m.GetId())
	if t.GetKind() == supportv1.GitHubTarget_KIND_DISCUSSION {
		return c.sendDiscussion(ctx, t, body, reached)
	}
	var out struct {
		ID      int64  `json:"id"`
		HTMLURL string `json:"html_url"`
	}
	path := fmt.Sprintf("/repos/%s/issues/%d/comments", t.GetRepository(), t.GetNumber())
	if err := reached(ctx); err != nil {
		return outbound.Sent{}, err
	}
	if err := c.rest(ctx, http.MethodPost, path, map[string]string{"body": body}, &out); err != nil {
		return outbound.Sent{}, err
	}
	return outbound.Sent{ProviderID: strconv.FormatInt(out.ID, 10), Permalink: out.HTMLURL}, nil
}

// Find looks through the thread's comments updated since for m's marker.
func (c *Channel) Find(ctx context.Context, m *supportv1.OutboundMessage, since time.Time) (outbound.Sent, bool, error) {
	t := m.GetGithub()
	marker := ghwebhook.ReplyMarker(m.GetId())
	if t.GetKind() == supportv1.GitHubTarget_KIND_DISCUSSION {
		return c.findDiscussion(ctx, t, marker, since)
	}
	for page := 1; ; page++ {
		var comments []struct {
			ID      int64  `json:"id"`
			HTMLURL string `json:"html_url"`
			Body    string `json:"body"`
		}
		q := url.Values{"since": {since.UTC().Format(time.RFC3339)}, "per_page": {"100"}, "page": {strconv.Itoa(page)}}
		path := fmt.Sprintf("/repos/%s/issues/%d/comments?%s", t.GetRepository(), t.GetNumber(), q.Encode())
		if err := c.rest(ctx, http.MethodGet, path, nil, &comments); err != nil {
			return outbound.Sent{}, false, err
		}
		for _, cm := range comments {
			if strings.Contains(cm.Body, marker) {
				return outbound.Sent{ProviderID: strconv.FormatInt(cm.ID, 10), Permalink: cm.HTMLURL}, true, nil
			}
		}
		if len(comments) < 100 {
			return outbound.Sent{}, false, nil
		}
	}
}

const (
	discussionIDQuery = `query($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) { discussion(number: $number) { id } }
}`
	addCommentMutation = `mutation($discussion: ID!, $body: String!) {
  addDiscussionComment(input: {discussionId: $discussion, body: $body}) { comment { id url } }
}`
	commentsQuery = `query($owner: String!, $name: String!, $number: Int!, $before: String) {
  repository(owner: $owner, name: $name) {
    discussion(number: $number) {
      comments(last: 100, before: $before) {
        nodes { id url body createdAt }
        pageInfo { hasPreviousPage startCursor }
      }
    }
  }
}`
)

func (c *Channel) sendDiscussion(ctx context.Context, t *supportv1.GitHubTarget, body string, reached func(context.Context) error) (outbound.Sent, error) {
	owner, name, _ := strings.Cut(t.GetRepository(), "/")
	var d struct {
		Repository struct {
			Discussion *struct {
				ID string `json:"id"`
			} `json:"discussion"`
		} `json:"repository"`
	}
	if err := c.graphQL(ctx, discussionIDQuery, map[string]any{"owner": owner, "name": name, "number": t.GetNumber()}, &d); err != nil {
		return outbound.Sent{}, err
	}
	if d.Repository.Discussion == nil {
		return outbound.Sent{}, outbound.Permanent(fmt.Sprintf("discussion %s#%d not found", t.GetRepository(), t.GetNumber()), nil)
	}
	var out struct {
		AddDiscussionComment struct {
			Comment struct {
				ID  string `json:"id"`
				URL string `json:"url"`
			} `json:"comment"`
		} `json:"addDiscussionComment"`
	}
	if err := reached(ctx); err != nil {
		return outbound.Sent{}, err
	}
	if err := c.graphQL(ctx, addCommentMutation, map[string]any{"discussion": d.Repository.Discussion.ID, "body": body}, &out); err != nil {
		return outbound.Sent{}, err
	}
	cm := out.AddDiscussionComment.Comment
	return outbound.Sent{ProviderID: cm.ID, Permalink: cm.URL}, nil
}

func (c *Channel) findDiscussion(ctx context.Context, t *supportv1.GitHubTarget, marker string, since time.Time) (outbound.Sent, bool, error) {
	owner, name, _ := strings.Cut(t.GetRepository(), "/")
	vars := map[string]any{"owner": owner, "name": name, "number": t.GetNumber(), "before": nil}
	for {
		var d struct {
			Repository struct {
				Discussion *struct {
					Comments struct {
						Nodes []struct {
							ID        string    `json:"id"`
							URL       string    `json:"url"`
							Body      string    `json:"body"`
							CreatedAt time.Time `json:"createdAt"`
						} `json:"nodes"`
						PageInfo struct {
							HasPreviousPage bool   `json:"hasPreviousPage"`
							StartCursor     string `json:"startCursor"`
						} `json:"pageInfo"`
					} `json:"comments"`
				} `json:"discussion"`
			} `json:"repository"`
		}
		if err := c.graphQL(ctx, commentsQuery, vars, &d); err != nil {
			return outbound.Sent{}, false, err
		}
		if d.Repository.Discussion == nil {
			return outbound.Sent{}, false, outbound.Permanent(fmt.Sprintf("discussion %s#%d not found", t.GetRepository(), t.GetNumber()), nil)
		}
		cs := d.Repository.Discussion.Comments
		older := false
		for _, n := range cs.Nodes {
			if strings.Contains(n.Body, marker) {
				return outbound.Sent{ProviderID: n.ID, Permalink: n.URL}, true, nil
			}
			older = older || n.CreatedAt.Before(since)
		}
		// Pages go back in time: stop at the first that reaches before since.
		if older || !cs.PageInfo.HasPreviousPage {
			return outbound.Sent{}, false, nil
		}
		vars["before"] = cs.PageInfo.StartCursor
	}
}

// apiError is GitHub's error body.
type apiError struct {
	Message string `json:"message"`
	Errors  []struct {
		Message string `json:"message"`
		Code    string `json:"code"`
		Field   string `json:"field"`
	} `json:"errors"`
}

func (e apiError) reason(status int) string {
	r := fmt.Sprintf("HTTP %d", status)
	if e.Message != "" {
		r += ": " + e.Message
	}
	for _, d := range e.Errors {
		if d.Message != "" {
			r += "; " + d.Message
		} else if d.Code != "" {
			r += "; " + d.Field + " " + d.Code
		}
	}
	return r
}

// rest calls the REST API with a JSON body and decodes the answer.
func (c *Channel) rest(ctx context.Context, method, path string, in, out any) error {
	resp, body, err := c.do(ctx, method, strings.TrimRight(c.APIURL, "/")+path, in)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return classify(resp, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return outbound.Retryable("decode GitHub's answer", err)
	}
	return nil
}

// graphQL runs one GraphQL operation.
func (c *Channel) graphQL(ctx context.Context, query string, vars map[string]any, out any) error {
	resp, body, err := c.do(ctx, http.MethodPost, c.graphQLURL(), map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return classify(resp, body)
	}
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return outbound.Retryable("decode GitHub's answer", err)
	}
	if len(r.Errors) > 0 {
		e := r.Errors[0]
		reason := "GraphQL " + e.Type + ": " + e.Message
		switch e.Type {
		case "RATE_LIMITED":
			return outbound.RateLimited(reason, time.Minute)
		case "NOT_FOUND", "FORBIDDEN", "UNPROCESSABLE":
			return outbound.Permanent(reason, nil)
		}
		return outbound.Retryable(reason, nil)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		return outbound.Retryable("decode GitHub's answer", err)
	}
	return nil
}

// do sends one authenticated request and reads the answer.
func (c *Channel) do(ctx context.Context, method, u string, in any) (*http.Response, []byte, error) {
	token, err := c.Tokens.Token(ctx)
	if err != nil {
		return nil, nil, err
	}
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, nil, outbound.Permanent("encode request", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, outbound.Permanent("build request", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "sidekick-ingest-github")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, nil, outbound.Retryable("GitHub unreachable", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, nil, outbound.Retryable("read GitHub's answer", err)
	}
	return resp, body, nil
}

// classify turns an HTTP error answer into an outbound failure: rate
// limits (429, or 403 with no requests left or a secondary limit) wait,
// 5xx retries, and the rest (401, 403, 404, 410, 422: bad credentials, no
// access, a locked or missing issue, a body over 65,536 characters) are
// refusals.
func classify(resp *http.Response, body []byte) error {
	var e apiError
	_ = json.Unmarshal(body, &e)
	reason := e.reason(resp.StatusCode)
	limited := resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode == http.StatusForbidden && (resp.Header.Get("X-RateLimit-Remaining") == "0" || strings.Contains(strings.ToLower(e.Message), "rate limit")))
	switch {
	case limited:
		return outbound.RateLimited(reason, retryAfter(resp))
	case resp.StatusCode >= 500:
		return outbound.Retryable(reason, nil)
	}
	return outbound.Permanent(reason, nil)
}

// retryAfter reads Retry-After, or X-RateLimit-Reset, or says a minute as
// GitHub advises for secondary limits.
func retryAfter(resp *http.Response) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if s, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		if d := time.Until(time.Unix(s, 0)); d > 0 {
			return d
		}
	}
	return time.Minute
}

// ErrNoToken is returned by a TokenSource without credentials.
var ErrNoToken = errors.New("no GitHub token configured")
