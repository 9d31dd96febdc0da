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

// repoPath is a path in backquotes or a link target that names a file or
// folder of the repository: it starts with a top-level folder.
var repoPath = regexp.MustCompile("(?:`|\\]\\()((?:platform|services|sidekick|proto|deploy|docs|scripts|bench)/[A-Za-z0-9_./-]*)[`)#]")

// TestNamedPathsExist: every repository path the README and the
// architecture walk-through name exists, so the file-by-file path of a
// message cannot silently drift from the code. Placeholders (<name>) and
// patterns (*) are not paths.
func TestNamedPathsExist(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	for _, doc := range []string{"README.md", filepath.Join("docs", "architecture.md")} {
		b, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		named := 0
		for _, m := range repoPath.FindAllStringSubmatch(string(b), -1) {
			p := strings.TrimSuffix(m[1], "/")
			if strings.ContainsAny(p, "<>*{}") {
				continue
			}
			named++
			rel := p
			if doc != "README.md" && strings.HasPrefix(m[0], "](") {
				rel = filepath.Join("docs", p) // a link is relative to its page
			}
			if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
				t.Errorf("%s names %s, which does not exist", doc, p)
			}
		}
		if named < 5 {
			t.Errorf("%s: found only %d paths: is the pattern broken?", doc, named)
		}
	}
}

// TestEveryPlatformPackageIsListed: the README's "Where things live" names
// every package of platform/.
func TestEveryPlatformPackageIsListed(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "## Where things live")
	if start < 0 {
		t.Fatal(`README.md has no "Where things live" section`)
	}
	section := readme[start:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	entries, err := os.ReadDir(filepath.Join(root, "platform"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !strings.Contains(section, "`"+e.Name()+"`") {
			t.Errorf(`README.md "Where things live" does not name platform/%s`, e.Name())
		}
	}
}
