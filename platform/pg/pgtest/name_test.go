package pgtest

import (
	"strings"
	"testing"
)

func TestDatabaseName(t *testing.T) {
	long := strings.Repeat("TestSomething/with spaces/and-ünïcode", 5)
	seen := map[string]bool{}
	for range 100 {
		n := databaseName(long)
		if len(n) > 63 {
			t.Fatalf("%q is longer than 63 bytes", n)
		}
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				t.Fatalf("%q has %q", n, r)
			}
		}
		if seen[n] {
			t.Fatalf("duplicate name %q", n)
		}
		seen[n] = true
	}
}

func TestWithDatabase(t *testing.T) {
	got, err := withDatabase("postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "t_x")
	if err != nil || got != "postgres://u:p@127.0.0.1:5432/t_x?sslmode=disable" {
		t.Errorf("withDatabase = %q, %v", got, err)
	}
	got, _ = withDatabase("host=/tmp user=u dbname=postgres", "t_x")
	if got != "host=/tmp user=u dbname=postgres dbname=t_x" {
		t.Errorf("withDatabase keyword/value = %q", got)
	}
}

func TestServerMajor(t *testing.T) {
	for v, want := range map[string]int{"15.18 (Debian 15.18-0+deb12u1)": 15, "9.6.24": 9, "17beta1": 17, "": 0} {
		if got := serverMajor(v); got != want {
			t.Errorf("serverMajor(%q) = %d, want %d", v, got, want)
		}
	}
}
