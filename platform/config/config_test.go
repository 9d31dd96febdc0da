package config

import (
	"strings"
	"testing"
	"time"
)

type sample struct {
	Secret  string        `env:"SIDEKICK_TEST_SECRET,required,notEmpty"`
	Addr    string        `env:"SIDEKICK_TEST_ADDR" envDefault:":8080"`
	Timeout time.Duration `env:"SIDEKICK_TEST_TIMEOUT" envDefault:"20s"`
	List    []string      `env:"SIDEKICK_TEST_LIST"`
}

func TestLoadNamesMissingVariable(t *testing.T) {
	var s sample
	err := Load(&s, []string{"SIDEKICK_TEST_ADDR=:1"})
	if err == nil {
		t.Fatal("Load succeeded without a required secret")
	}
	if !strings.Contains(err.Error(), "SIDEKICK_TEST_SECRET") {
		t.Fatalf("error %q does not name the missing variable", err)
	}
}

func TestLoadDefaultsAndValues(t *testing.T) {
	var s sample
	err := Load(&s, []string{"SIDEKICK_TEST_SECRET=x=y", "SIDEKICK_TEST_LIST=a,b", "SIDEKICK_TEST_TIMEOUT=5s"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Secret != "x=y" || s.Addr != ":8080" || s.Timeout != 5*time.Second || len(s.List) != 2 {
		t.Fatalf("unexpected config %+v", s)
	}
}

func TestLoadRejectsEmptySecret(t *testing.T) {
	var s sample
	err := Load(&s, []string{"SIDEKICK_TEST_SECRET="})
	if err == nil || !strings.Contains(err.Error(), "SIDEKICK_TEST_SECRET") {
		t.Fatalf("want error naming SIDEKICK_TEST_SECRET, got %v", err)
	}
}

func TestLoadNamesUnparsableVariable(t *testing.T) {
	var s sample
	err := Load(&s, []string{"SIDEKICK_TEST_SECRET=x", "SIDEKICK_TEST_TIMEOUT=soon"})
	if err == nil || !strings.Contains(err.Error(), "SIDEKICK_TEST_TIMEOUT") {
		t.Fatalf("want an error naming SIDEKICK_TEST_TIMEOUT, got %v", err)
	}
}

// TestLoadSettingsWithoutSecrets: the provision step reads a service's
// settings without its secrets, and still refuses a malformed value.
func TestLoadSettingsWithoutSecrets(t *testing.T) {
	var c struct {
		Secret string `env:"SIDEKICK_T_SECRET,required,notEmpty"`
		Limit  int64  `env:"SIDEKICK_T_LIMIT" envDefault:"7"`
	}
	if err := LoadSettings(&c, []string{"SIDEKICK_T_SECRET="}); err != nil || c.Limit != 7 {
		t.Errorf("settings without the secret: %+v, %v; want the default limit and no error", c, err)
	}
	if err := Load(&c, nil); err == nil {
		t.Error("Load without the secret: no error")
	}
	if err := LoadSettings(&c, []string{"SIDEKICK_T_LIMIT=lots"}); err == nil || !strings.Contains(err.Error(), "SIDEKICK_T_LIMIT") {
		t.Errorf("malformed limit: %v, want an error naming SIDEKICK_T_LIMIT", err)
	}
}
