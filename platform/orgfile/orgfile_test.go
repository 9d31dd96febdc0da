package orgfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sidekickhq/sidekick/platform/orgfile"
)

const example = `# people and rotations belong to rotation
people:
  - {id: alice}
triage:
escalation:
  policies: []
sentry:
  ownership: {frontend: platform}
`

func TestParseHandsOutSections(t *testing.T) {
	f, err := orgfile.Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Section("people"); n == nil || n.Line != 3 || len(n.Content) != 1 {
		t.Fatalf("people: %+v, want the list on line 3", n)
	}
	if n := f.Section("escalation"); n == nil || n.Line != 6 {
		t.Fatalf("escalation: %+v, want the mapping on line 6", n)
	}
	// Empty and absent sections read the same.
	for _, name := range []string{"triage", "rotations", "business_contacts"} {
		if n := f.Section(name); n != nil {
			t.Errorf("%s: %+v, want nil", name, n)
		}
	}
	if f.Version != orgfile.Digest([]byte(example)) || len(f.Version) != 64 {
		t.Errorf("version %q is not the content digest", f.Version)
	}
	// A service without an organisation file sees no sections.
	var none *orgfile.File
	if none.Section("people") != nil {
		t.Error("a nil File has sections")
	}
}

func TestParseRefusesUnknownSections(t *testing.T) {
	_, err := orgfile.Parse([]byte("people: []\nescalaton:\n  policies: []\nbusiness_contact: []\n"))
	if err == nil {
		t.Fatal("unknown top-level keys accepted")
	}
	for _, want := range []string{`line 2: unknown section "escalaton"`, `line 4: unknown section "business_contact"`, "escalation"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	for name, bad := range map[string]string{
		"a list":        "- people\n- teams\n",
		"broken YAML":   "people: [\n",
		"duplicate key": "people: []\npeople: []\n",
	} {
		if _, err := orgfile.Parse([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseAcceptsEmptyFiles(t *testing.T) {
	for _, ok := range []string{"", "# nothing yet\n", "{}\n"} {
		if _, err := orgfile.Parse([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestReadNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sidekick.yaml")
	if err := os.WriteFile(path, []byte("peeple: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := orgfile.Read(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("error %v, want one naming %s and line 1", err, path)
	}
	if err := os.WriteFile(path, []byte(example), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := orgfile.Read(path)
	if err != nil || f.Path != path || string(f.Data) != example {
		t.Fatalf("Read: %+v, %v", f, err)
	}
	if _, err := orgfile.Read(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("a missing file read without error")
	}
}
