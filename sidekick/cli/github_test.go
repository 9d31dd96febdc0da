package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGitHub speaks GitHub's webhook deliveries API for one hook: the list
// (newest first) and the redelivery request.
type fakeGitHub struct {
	prefix string
	refuse map[string]bool // delivery ids answered 422

	mu       sync.Mutex
	list     []map[string]any
	attempts []string
	requests int
}

func newFakeGitHub(t *testing.T, prefix string) (*fakeGitHub, *httptest.Server) {
	now := time.Now()
	add := func(id int64, guid string, ago time.Duration, code int, status string) map[string]any {
		return map[string]any{
			"id": id, "guid": guid, "delivered_at": now.Add(-ago).UTC().Format(time.RFC3339), "redelivery": false,
			"duration": 0.3, "status": status, "status_code": code, "event": "issues", "action": "opened",
			"installation_id": nil, "repository_id": 186853002,
		}
	}
	f := &fakeGitHub{prefix: prefix, refuse: map[string]bool{}, list: []map[string]any{
		add(11, "guid-a", 30*time.Minute, 503, "Invalid HTTP Response: 503"),
		add(12, "guid-b", time.Hour, 200, "OK"),
		add(13, "guid-d", 2*time.Hour, 0, "Timed out"),
		add(5, "guid-c", 10*time.Hour, 502, "Invalid HTTP Response: 502"),
	}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if r.Header.Get("Authorization") != "Bearer ghp_test" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Bad credentials"}`))
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == f.prefix+"/deliveries":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(f.list)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, f.prefix+"/deliveries/") && strings.HasSuffix(r.URL.Path, "/attempts"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, f.prefix+"/deliveries/"), "/attempts")
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

func (f *fakeGitHub) redelivered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.attempts...)
}

func TestGitHubRedeliver(t *testing.T) {
	f, srv := newFakeGitHub(t, "/repos/acme/main/hooks/42")
	env := []string{"SIDEKICK_GITHUB_TOKEN=ghp_test", "SIDEKICK_GITHUB_API_URL=" + srv.URL}

	out, err := runEnv(t, env, "", "github", "redeliver", "--since", "6h", "--repo", "acme/main", "--hook-id", "42", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.redelivered(); len(got) != 0 {
		t.Fatalf("a dry run asked for redeliveries: %v", got)
	}
	if !strings.Contains(out, "guid-a issues.opened") || !strings.Contains(out, "would redeliver") || strings.Contains(out, "guid-c") {
		t.Fatalf("dry run printed:\n%s", out)
	}

	out, err = runEnv(t, env, "", "github", "redeliver", "--since", "6h", "--repo", "acme/main", "--hook-id", "42")
	if err != nil {
		t.Fatal(err)
	}
	// guid-b succeeded and guid-c is older than --since.
	if got := f.redelivered(); strings.Join(got, ",") != "11,13" {
		t.Fatalf("redelivered %v, want 11 and 13", got)
	}
	if !strings.Contains(out, "2 failed deliveries, 2 redelivered, 0 refused") {
		t.Fatalf("printed:\n%s", out)
	}

	// A refused redelivery is an error, after the others were asked for.
	f.refuse["13"] = true
	_, err = runEnv(t, env, "", "github", "redeliver", "--since", "1d", "--repo", "acme/main", "--hook-id", "42")
	if err == nil || !strings.Contains(err.Error(), "1 of 3 refused") || !strings.Contains(err.Error(), "422") {
		t.Fatalf("refused redelivery: %v", err)
	}
	if got := f.redelivered(); strings.Join(got, ",") != "11,13,11,5" {
		t.Fatalf("redelivered %v", got)
	}
}

func TestGitHubRedeliverOrganizationHook(t *testing.T) {
	f, srv := newFakeGitHub(t, "/orgs/acme/hooks/7")
	env := []string{"SIDEKICK_GITHUB_TOKEN=ghp_test", "SIDEKICK_GITHUB_API_URL=" + srv.URL + "/"}
	if _, err := runEnv(t, env, "", "github", "redeliver", "--since", "45m", "--org", "acme", "--hook-id", "7"); err != nil {
		t.Fatal(err)
	}
	if got := f.redelivered(); strings.Join(got, ",") != "11" {
		t.Fatalf("redelivered %v", got)
	}
}

func TestGitHubRedeliverArgumentErrors(t *testing.T) {
	f, srv := newFakeGitHub(t, "/repos/acme/main/hooks/42")
	env := []string{"SIDEKICK_GITHUB_TOKEN=ghp_test", "SIDEKICK_GITHUB_API_URL=" + srv.URL}
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no token", []string{"SIDEKICK_GITHUB_API_URL=" + srv.URL}, []string{"--repo", "acme/main", "--hook-id", "42"}, "SIDEKICK_GITHUB_TOKEN is not set"},
		{"no hook", env, []string{"--repo", "acme/main"}, "--hook-id is required"},
		{"no repository or org", env, []string{"--hook-id", "42"}, "[repo org]"},
		{"both", env, []string{"--repo", "acme/main", "--org", "acme", "--hook-id", "42"}, "[repo org]"},
		{"bad repo", env, []string{"--repo", "acme", "--hook-id", "42"}, `--repo "acme": want owner/name`},
		{"bad since", env, []string{"--repo", "acme/main", "--hook-id", "42", "--since", "yesterday"}, `--since "yesterday"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runEnv(t, tc.env, "", append([]string{"github", "redeliver"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.requests != 0 {
		t.Fatalf("%d request(s) sent to GitHub for bad command lines", f.requests)
	}
}

func TestParseSince(t *testing.T) {
	good := map[string]time.Duration{"90m": 90 * time.Minute, "6h": 6 * time.Hour, "3d": 72 * time.Hour, "1h30m": 90 * time.Minute}
	for in, want := range good {
		if got, err := parseSince(in); err != nil || got != want {
			t.Errorf("parseSince(%q) = %s, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "-1h", "d", "0d", "3 days"} {
		if _, err := parseSince(in); err == nil {
			t.Errorf("parseSince(%q): no error", in)
		}
	}
}
