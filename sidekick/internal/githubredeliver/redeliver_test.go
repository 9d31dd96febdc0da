package githubredeliver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fakeGitHub speaks the two webhook-delivery endpoints of GitHub's REST
// API for one hook: the list (newest first, cursor pagination through the
// Link header) and the redelivery request.
type fakeGitHub struct {
	t        *testing.T
	prefix   string // "/repos/acme/main/hooks/42" or "/orgs/acme/hooks/42"
	token    string
	pageSize int
	refuse   map[int64]bool // redelivery ids answered 422

	mu         sync.Mutex
	deliveries []map[string]any
	attempts   []int64
	pages      int
}

func (f *fakeGitHub) add(id int64, guid string, ago time.Duration, code int, status string, redelivery bool) {
	action := "opened"
	f.deliveries = append(f.deliveries, map[string]any{
		"id": id, "guid": guid, "delivered_at": now.Add(-ago).Format(time.RFC3339), "redelivery": redelivery,
		"duration": 0.27, "status": status, "status_code": code, "event": "issues", "action": action,
		"installation_id": nil, "repository_id": 186853002, "throttled_at": nil,
	})
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.token || r.Header.Get("Accept") != "application/vnd.github+json" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == f.prefix+"/deliveries":
		f.pages++
		if pp := r.URL.Query().Get("per_page"); pp != "100" {
			f.t.Errorf("per_page=%q", pp)
		}
		start := 0
		if c := r.URL.Query().Get("cursor"); c != "" {
			start, _ = strconv.Atoi(strings.TrimPrefix(c, "v1_"))
		}
		end := min(start+f.pageSize, len(f.deliveries))
		if end < len(f.deliveries) {
			w.Header().Set("Link", fmt.Sprintf(`<http://%s%s/deliveries?per_page=100&cursor=v1_%d>; rel="next"`, r.Host, f.prefix, end))
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(f.deliveries[start:end])
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, f.prefix+"/deliveries/") && strings.HasSuffix(r.URL.Path, "/attempts"):
		id, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, f.prefix+"/deliveries/"), "/attempts"), 10, 64)
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if f.refuse[id] {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"message":"Validation Failed"}`))
			return
		}
		f.attempts = append(f.attempts, id)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"Not Found"}`))
	}
}

func newFake(t *testing.T, prefix string) (*fakeGitHub, *httptest.Server) {
	f := &fakeGitHub{t: t, prefix: prefix, token: "ghp_test", pageSize: 2, refuse: map[int64]bool{}}
	// Newest first, as GitHub lists them.
	f.add(11, "guid-a", 30*time.Minute, 503, "Invalid HTTP Response: 503", true) // A failed twice
	f.add(12, "guid-b", 90*time.Minute, 200, "OK", true)                         // B recovered by a redelivery
	f.add(10, "guid-a", 60*time.Minute, 502, "Invalid HTTP Response: 502", false)
	f.add(9, "guid-b", 2*time.Hour, 503, "Invalid HTTP Response: 503", false)
	f.add(8, "guid-c", 3*time.Hour, 200, "OK", false)
	f.add(7, "guid-d", 5*time.Hour, 0, "Timed out", false)
	f.add(6, "guid-f", 6*time.Hour, 401, "Invalid HTTP Response: 401", false)
	f.add(5, "guid-e", 30*time.Hour, 503, "Invalid HTTP Response: 503", false) // outside the window
	f.add(4, "guid-g", 31*time.Hour, 503, "Invalid HTTP Response: 503", false)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func TestRedeliverRepositoryHook(t *testing.T) {
	f, srv := newFake(t, "/repos/acme/main/hooks/42")
	var out strings.Builder
	res, err := Redeliver(context.Background(), Options{
		BaseURL: srv.URL, Token: "ghp_test", Owner: "acme", Repo: "main", HookID: 42,
		Since: 24 * time.Hour, Now: func() time.Time { return now }, HTTPClient: srv.Client(),
	}, &out)
	if err != nil {
		t.Fatalf("Redeliver: %v\n%s", err, out.String())
	}
	if want := []int64{11, 7, 6}; !slices.Equal(f.attempts, want) {
		t.Fatalf("redelivered ids %v, want %v (latest failed attempt of A, D and F)", f.attempts, want)
	}
	if res.Listed != 7 || res.Failed != 3 || res.Redelivered != 3 || res.Errors != 0 {
		t.Fatalf("result %+v", res)
	}
	if !slices.Equal(res.GUIDs, []string{"guid-a", "guid-d", "guid-f"}) {
		t.Fatalf("guids %v", res.GUIDs)
	}
	// It stopped paging once it reached deliveries older than the window.
	if f.pages != 4 {
		t.Fatalf("fetched %d pages, want 4", f.pages)
	}
	if !strings.Contains(out.String(), "guid-d issues.opened") || !strings.Contains(out.String(), "Timed out") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestRedeliverOrgHookDryRunAndRefusals(t *testing.T) {
	f, srv := newFake(t, "/orgs/acme/hooks/42")
	opts := Options{BaseURL: srv.URL + "/", Token: "ghp_test", Org: "acme", HookID: 42, Since: 48 * time.Hour,
		Now: func() time.Time { return now }, HTTPClient: srv.Client(), DryRun: true}
	var out strings.Builder
	res, err := Redeliver(context.Background(), opts, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.attempts) != 0 || res.Failed != 5 || res.Redelivered != 0 {
		t.Fatalf("dry run redelivered %v, result %+v", f.attempts, res)
	}
	if strings.Count(out.String(), "would redeliver") != 5 {
		t.Fatalf("dry run output:\n%s", out.String())
	}

	f.refuse[7] = true
	opts.DryRun = false
	out.Reset()
	res, err = Redeliver(context.Background(), opts, &out)
	if err == nil || !strings.Contains(err.Error(), "guid-d") || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "Validation Failed") {
		t.Fatalf("want an error naming the refused delivery, got %v", err)
	}
	if res.Redelivered != 4 || res.Errors != 1 {
		t.Fatalf("result %+v", res)
	}
}

func TestRedeliverErrors(t *testing.T) {
	_, srv := newFake(t, "/repos/acme/main/hooks/42")
	base := Options{BaseURL: srv.URL, Token: "ghp_test", Owner: "acme", Repo: "main", HookID: 42, HTTPClient: srv.Client(), Now: func() time.Time { return now }}
	for name, tc := range map[string]struct {
		mod  func(*Options)
		want string
	}{
		"bad token":    {func(o *Options) { o.Token = "nope" }, "401: Bad credentials"},
		"unknown hook": {func(o *Options) { o.HookID = 7 }, "404: Not Found"},
		"no hook":      {func(o *Options) { o.HookID = 0 }, "hook id"},
		"no target":    {func(o *Options) { o.Owner, o.Repo = "", "" }, "required"},
		"both targets": {func(o *Options) { o.Org = "acme" }, "not both"},
		"bad base":     {func(o *Options) { o.BaseURL = "api.github.com" }, "base URL"},
		"cancelled":    {nil, "context canceled"},
	} {
		opts := base
		ctx := context.Background()
		if tc.mod != nil {
			tc.mod(&opts)
		} else {
			c, cancel := context.WithCancel(ctx)
			cancel()
			ctx = c
		}
		var out strings.Builder
		if _, err := Redeliver(ctx, opts, &out); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, tc.want)
		}
	}
}

func TestNextLink(t *testing.T) {
	h := `<https://api.github.com/repos/a/b/hooks/1/deliveries?per_page=100&cursor=v1_9>; rel="next", <https://api.github.com/repos/a/b/hooks/1/deliveries?per_page=100>; rel="first"`
	if got := nextLink(h); got != "https://api.github.com/repos/a/b/hooks/1/deliveries?per_page=100&cursor=v1_9" {
		t.Fatalf("next %q", got)
	}
	if got := nextLink(`<https://x/y>; rel="prev"`); got != "" {
		t.Fatalf("no next: %q", got)
	}
}
