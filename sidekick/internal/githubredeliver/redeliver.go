// Package githubredeliver asks GitHub to redeliver the webhook deliveries
// that failed. GitHub never retries a failed delivery by itself; it keeps
// them for a few days and offers a REST endpoint per delivery. This is the
// library behind `sidekick github redeliver --since DURATION`.
//
// A redelivery keeps the delivery's GUID (X-GitHub-Delivery), so
// ingest-github publishes it under the same message id and triage drops it
// if the first attempt did get through after all.
package githubredeliver

import (
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
)

// DefaultBaseURL is GitHub's REST API.
const DefaultBaseURL = "https://api.github.com"

// DefaultSince is how far back GitHub keeps deliveries.
const DefaultSince = 72 * time.Hour

// Options says which hook to look at and how.
type Options struct {
	// BaseURL of the REST API; default DefaultBaseURL (GitHub Enterprise:
	// https://HOST/api/v3).
	BaseURL string
	// Token is a token allowed to read and redeliver the hook's deliveries
	// (admin on the repository, or owner of the organization).
	Token string
	// Owner and Repo name a repository hook; Org names an organization
	// hook instead. Exactly one of the two must be set.
	Owner, Repo string
	Org         string
	// HookID is the hook's id (Settings → Webhooks → the hook's URL).
	HookID int64
	// Since is how far back to look; default DefaultSince.
	Since time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// HTTPClient; default a client with a 30s timeout.
	HTTPClient *http.Client
	// DryRun lists what would be redelivered without asking for it.
	DryRun bool
}

// Result counts what Redeliver did.
type Result struct {
	// Listed is the number of delivery attempts seen inside the window.
	Listed int
	// Failed is the number of deliveries (GUIDs) whose attempts in the
	// window all failed.
	Failed int
	// Redelivered is the number GitHub accepted to redeliver (0 in a dry run).
	Redelivered int
	// Errors is the number of redelivery requests GitHub refused.
	Errors int
	// GUIDs are the failed deliveries, newest first.
	GUIDs []string
}

// delivery is one item of GET .../hooks/{hook_id}/deliveries.
type delivery struct {
	ID          int64     `json:"id"`
	GUID        string    `json:"guid"`
	DeliveredAt time.Time `json:"delivered_at"`
	Redelivery  bool      `json:"redelivery"`
	Status      string    `json:"status"`
	StatusCode  int       `json:"status_code"`
	Event       string    `json:"event"`
	Action      *string   `json:"action"`
}

func (d delivery) ok() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

// Redeliver lists the hook's deliveries of the last opts.Since, newest
// first and page by page, and asks GitHub to redeliver each delivery none
// of whose attempts succeeded (its latest failed attempt). It writes one
// line per failed delivery to out. The error joins every refused
// redelivery; listing failures stop the run.
func Redeliver(ctx context.Context, opts Options, out io.Writer) (Result, error) {
	var res Result
	c, err := newClient(opts)
	if err != nil {
		return res, err
	}
	since := opts.Since
	if since <= 0 {
		since = DefaultSince
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cutoff := now().Add(-since)

	succeeded := map[string]bool{}
	latestFailure := map[string]delivery{}
	var order []string // failed GUIDs, newest first
	next := c.hookPath + "/deliveries?per_page=100"
	for next != "" {
		page, link, err := c.list(ctx, next)
		if err != nil {
			return res, err
		}
		done := false
		for _, d := range page {
			if d.DeliveredAt.Before(cutoff) {
				done = true // newest first: the rest is older still
				break
			}
			res.Listed++
			if d.ok() {
				succeeded[d.GUID] = true
				continue
			}
			if _, seen := latestFailure[d.GUID]; !seen {
				latestFailure[d.GUID] = d
				order = append(order, d.GUID)
			}
		}
		if done {
			break
		}
		next = link
	}

	var errs []error
	for _, guid := range order {
		if succeeded[guid] {
			continue
		}
		d := latestFailure[guid]
		res.Failed++
		res.GUIDs = append(res.GUIDs, guid)
		what := d.Event
		if d.Action != nil && *d.Action != "" {
			what += "." + *d.Action
		}
		line := fmt.Sprintf("%s %s %s failed (%s)", guid, what, d.DeliveredAt.UTC().Format(time.RFC3339), statusText(d))
		if opts.DryRun {
			fmt.Fprintf(out, "%s: would redeliver\n", line)
			continue
		}
		if err := c.redeliver(ctx, d.ID); err != nil {
			res.Errors++
			errs = append(errs, fmt.Errorf("redeliver %s: %w", guid, err))
			fmt.Fprintf(out, "%s: redelivery refused: %v\n", line, err)
			continue
		}
		res.Redelivered++
		fmt.Fprintf(out, "%s: redelivery requested\n", line)
	}
	fmt.Fprintf(out, "%d attempts since %s, %d failed deliveries, %d redelivered, %d refused\n",
		res.Listed, cutoff.UTC().Format(time.RFC3339), res.Failed, res.Redelivered, res.Errors)
	return res, errors.Join(errs...)
}

func statusText(d delivery) string {
	if d.StatusCode == 0 {
		return d.Status
	}
	return strconv.Itoa(d.StatusCode) + " " + d.Status
}

type client struct {
	base     *url.URL
	token    string
	http     *http.Client
	hookPath string
}

func newClient(opts Options) (*client, error) {
	if opts.HookID <= 0 {
		return nil, errors.New("a hook id is required")
	}
	var hookPath string
	switch {
	case opts.Org != "" && (opts.Owner != "" || opts.Repo != ""):
		return nil, errors.New("give either an organization or an owner and repository, not both")
	case opts.Org != "":
		hookPath = "/orgs/" + url.PathEscape(opts.Org) + "/hooks/" + strconv.FormatInt(opts.HookID, 10)
	case opts.Owner != "" && opts.Repo != "":
		hookPath = "/repos/" + url.PathEscape(opts.Owner) + "/" + url.PathEscape(opts.Repo) + "/hooks/" + strconv.FormatInt(opts.HookID, 10)
	default:
		return nil, errors.New("an organization, or an owner and repository, is required")
	}
	raw := opts.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("bad base URL %q", raw)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &client{base: base, token: opts.Token, http: hc, hookPath: hookPath}, nil
}

// resolve turns a path (with query) or an absolute URL from a Link header
// into a URL on the API host.
func (c *client) resolve(ref string) (string, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	if u.IsAbs() {
		if u.Host != c.base.Host {
			return "", fmt.Errorf("refusing to follow a link to another host: %s", u.Host)
		}
		return u.String(), nil
	}
	return c.base.String() + ref, nil
}

func (c *client) do(ctx context.Context, method, ref string) (*http.Response, error) {
	target, err := c.resolve(ref)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "sidekick-github-redeliver")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}

func (c *client) list(ctx context.Context, ref string) ([]delivery, string, error) {
	resp, err := c.do(ctx, http.MethodGet, ref)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("list deliveries: %w", apiError(resp))
	}
	var page []delivery
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, "", fmt.Errorf("list deliveries: decode: %w", err)
	}
	return page, nextLink(resp.Header.Get("Link")), nil
}

func (c *client) redeliver(ctx context.Context, id int64) error {
	resp, err := c.do(ctx, http.MethodPost, c.hookPath+"/deliveries/"+strconv.FormatInt(id, 10)+"/attempts")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return apiError(resp) // reads GitHub's message from the body
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return nil
}

// apiError reads GitHub's {"message": ...} error body.
func apiError(resp *http.Response) error {
	var body struct {
		Message string `json:"message"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	if body.Message == "" {
		body.Message = http.StatusText(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			body.Message += " (retry after " + ra + "s)"
		}
	}
	return fmt.Errorf("GitHub answered %d: %s", resp.StatusCode, body.Message)
}

// nextLink returns the rel="next" URL of a Link header, or "".
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			if strings.ReplaceAll(strings.TrimSpace(p), " ", "") == `rel="next"` {
				return strings.Trim(strings.TrimSpace(target), "<>")
			}
		}
	}
	return ""
}
