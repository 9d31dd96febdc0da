package tier

import (
	"slices"
	"testing"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func TestRules(t *testing.T) {
	const (
		priority   = supportv1.Tier_TIER_PRIORITY
		subscriber = supportv1.Tier_TIER_SUBSCRIBER
		community  = supportv1.Tier_TIER_COMMUNITY
	)
	tests := []struct {
		name      string
		threshold int64
		c         *Customer
		want      supportv1.Tier
		reason    string
	}{
		{"unknown author", 0, nil, community, "unknown customer"},
		{"enterprise plan", 0, &Customer{Plan: "enterprise"}, priority, "plan enterprise"},
		{"scale plan, any case and spacing", 0, &Customer{Plan: " Scale "}, priority, "plan scale"},
		{"enterprise in sales process", 0, &Customer{Plan: "enterprise", InSalesProcess: true}, priority, "plan enterprise (in sales process)"},
		{"free customer in the sales process", 0, &Customer{Plan: "free", InSalesProcess: true}, priority, "in sales process"},
		{"cloud at the default threshold", 0, &Customer{Plan: "cloud", MonthlyRevenueCents: 200000}, priority, "revenue $2,000/month >= $2,000"},
		{"cloud just under the threshold", 0, &Customer{Plan: "cloud", MonthlyRevenueCents: 199999}, subscriber, "paying $1,999.99/month"},
		{"cloud above a custom threshold", 50000, &Customer{Plan: "cloud", MonthlyRevenueCents: 60000}, priority, "revenue $600/month >= $500"},
		{"cloud under a custom threshold", 50000, &Customer{Plan: "cloud", MonthlyRevenueCents: 100}, subscriber, "paying $1/month"},
		{"paying one cent", 0, &Customer{Plan: "cloud", MonthlyRevenueCents: 1}, subscriber, "paying $0.01/month"},
		{"free cloud", 0, &Customer{Plan: "cloud"}, community, "plan cloud, not paying"},
		{"open source", 0, &Customer{Plan: "open-source"}, community, "plan open-source, not paying"},
		{"known customer without a plan", 0, &Customer{}, community, "no paid plan"},
		{"enterprise plan without revenue recorded", 0, &Customer{Plan: "enterprise", MonthlyRevenueCents: 0}, priority, "plan enterprise"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Rules{PriorityRevenueCents: tt.threshold}.Of(tt.c)
			if got != tt.want || reason != tt.reason {
				t.Errorf("Of(%+v) = %v %q, want %v %q", tt.c, got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestDollars(t *testing.T) {
	for cents, want := range map[int64]string{0: "$0", 5: "$0.05", 100: "$1", 123456789: "$1,234,567.89", 100000000: "$1,000,000", -250: "-$2.50"} {
		if got := Dollars(cents); got != want {
			t.Errorf("Dollars(%d) = %q, want %q", cents, got, want)
		}
	}
}

func TestCandidates(t *testing.T) {
	tests := []struct {
		name string
		ch   supportv1.Channel
		a    *supportv1.Author
		want []Identity
	}{
		{"nil author", supportv1.Channel_CHANNEL_SLACK, nil, nil},
		{"slack user with email", supportv1.Channel_CHANNEL_SLACK, &supportv1.Author{Id: "U0ABC", Email: "Jo@Acme.COM"},
			[]Identity{{KindSlack, "U0ABC"}, {KindEmailDomain, "acme.com"}}},
		{"github login", supportv1.Channel_CHANNEL_GITHUB, &supportv1.Author{Id: "12345", Handle: "octocat"},
			[]Identity{{KindGitHub, "octocat"}, {KindGitHub, "12345"}}},
		{"email sender as id", supportv1.Channel_CHANNEL_EMAIL, &supportv1.Author{Id: "Jo Doe <jo@sub.acme.com>"},
			[]Identity{{KindEmailDomain, "sub.acme.com"}, {KindEmailDomain, "acme.com"}}},
		{"sentry user", supportv1.Channel_CHANNEL_SENTRY, &supportv1.Author{Id: "42", Email: "ops@acme.com"},
			[]Identity{{KindSentry, "42"}, {KindSentry, "ops@acme.com"}, {KindEmailDomain, "acme.com"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Candidates(tt.ch, tt.a); !slices.Equal(got, tt.want) {
				t.Errorf("Candidates = %v, want %v", got, tt.want)
			}
		})
	}
}
