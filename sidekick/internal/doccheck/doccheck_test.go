package doccheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var envTag = regexp.MustCompile(`env:"(SIDEKICK_[A-Z0-9_]+)`)

// TestEveryVariableIsDocumented: each SIDEKICK_* variable in a struct tag
// of the services, platform or CLI appears in docs/configuration.md or in
// the per-channel guide it links.
func TestEveryVariableIsDocumented(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	used := map[string]string{}
	for _, dir := range []string{"services", "platform", "sidekick"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "//") {
					continue // an example in a comment, not a variable
				}
				for _, m := range envTag.FindAllStringSubmatch(line, -1) {
					used[m[1]] = path
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d variables: is the walk broken?", len(used))
	}
	var docs strings.Builder
	for _, name := range []string{"configuration.md", "slack.md", "email.md", "github.md", "sentry.md", "triage.md", "rotation.md", "escalation.md", "operations.md", "cli.md", "console.md"} {
		b, err := os.ReadFile(filepath.Join(root, "docs", name))
		if err == nil {
			docs.Write(b)
		}
	}
	var missing []string
	for v, path := range used {
		if !strings.Contains(docs.String(), v) {
			missing = append(missing, v+" ("+path+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("%d variables are read by the code but documented nowhere in docs/:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
}
