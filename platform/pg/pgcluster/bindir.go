package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// debianRoot is where Debian and Ubuntu install one bin dir per major
// version (/usr/lib/postgresql/15/bin).
const debianRoot = "/usr/lib/postgresql"

// ErrNoBinaries is returned (wrapped) by FindBinDir when no PostgreSQL
// server binaries are installed.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres, pg_ctl) not found")

// FindBinDir reports where the server binaries are, with a clear error
// naming the Debian package (postgresql) when they are missing.
//
// It looks, in order, at the directory of pg_ctl found in PATH (after
// resolving symlinks, as /usr/local/bin/pg_ctl often is one), at
// `pg_config --bindir`, and at the newest /usr/lib/postgresql/<major>/bin.
// A candidate counts only if initdb, postgres and pg_ctl are all there.
func FindBinDir() (string, error) {
	var tried []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if hasServerBinaries(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	if p, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(p, "--bindir").Output(); err == nil {
			dir := strings.TrimSpace(string(out))
			if hasServerBinaries(dir) {
				return dir, nil
			}
			tried = append(tried, dir)
		}
	}
	for _, dir := range debianBinDirs() {
		if hasServerBinaries(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	where := "PATH and " + debianRoot + "/*/bin"
	if len(tried) > 0 {
		where += " (incomplete: " + strings.Join(tried, ", ") + ")"
	}
	return "", fmt.Errorf("%w in %s; install them with `apt-get install postgresql` (Debian/Ubuntu package postgresql), `brew install postgresql` on macOS, or set SIDEKICK_DATABASE_URL to use an existing server", ErrNoBinaries, where)
}

// debianBinDirs lists /usr/lib/postgresql/<major>/bin, newest major first.
func debianBinDirs() []string {
	entries, err := os.ReadDir(debianRoot)
	if err != nil {
		return nil
	}
	type cand struct {
		major float64
		dir   string
	}
	var cands []cand
	for _, e := range entries {
		v, err := strconv.ParseFloat(e.Name(), 64)
		if err != nil {
			continue
		}
		cands = append(cands, cand{v, filepath.Join(debianRoot, e.Name(), "bin")})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		switch {
		case a.major > b.major:
			return -1
		case a.major < b.major:
			return 1
		}
		return 0
	})
	dirs := make([]string, len(cands))
	for i, c := range cands {
		dirs[i] = c.dir
	}
	return dirs
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres", "pg_ctl"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}
