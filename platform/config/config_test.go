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
