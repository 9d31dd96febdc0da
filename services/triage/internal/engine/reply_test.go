package engine

import (
	"testing"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func TestThreadKeysToTargets(t *testing.T) {
	if s, ok := SlackThread("slack:T0ACME/C0HELP/1700000000.000100"); !ok || s.GetTeamId() != "T0ACME" || s.GetChannel() != "C0HELP" || s.GetThreadTs() != "1700000000.000100" {
		t.Errorf("slack thread: %v %v", s, ok)
	}
	for _, bad := range []string{"slack:T0ACME/C0HELP", "slack:T0ACME//1.2", "slack:a/b/c/d"} {
		if _, ok := SlackThread(bad); ok {
			t.Errorf("SlackThread(%q) read a thread", bad)
		}
	}
	for key, want := range map[string]*supportv1.GitHubTarget{
		"github:acme/app#42":            {Repository: "acme/app", Kind: supportv1.GitHubTarget_KIND_ISSUE, Number: 42},
		"github:acme/app/discussions#7": {Repository: "acme/app", Kind: supportv1.GitHubTarget_KIND_DISCUSSION, Number: 7},
		"github:acme#1":                 nil,
		"github:acme/app#0":             nil,
		"github:acme/app/x/y#3":         nil,
		"email:acme/app#3":              nil,
	} {
		got, ok := GitHubThread(key)
		if ok != (want != nil) || (ok && (got.GetRepository() != want.GetRepository() || got.GetKind() != want.GetKind() || got.GetNumber() != want.GetNumber())) {
			t.Errorf("GitHubThread(%q) = %v %v, want %v", key, got, ok, want)
		}
	}
}

func TestAddressList(t *testing.T) {
	got := addressList(`Jane Roe <Jane@Globex.example>, ops@globex.example`)
	if len(got) != 2 || got[0] != "jane@globex.example" || got[1] != "ops@globex.example" {
		t.Errorf("addressList: %v", got)
	}
	if got := addressList(" "); got != nil {
		t.Errorf("empty list: %v", got)
	}
}
