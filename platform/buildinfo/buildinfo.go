// Package buildinfo holds the version and commit stamped in at build time:
//
//	go build -ldflags "-X github.com/sidekickhq/sidekick/platform/buildinfo.Version=v1.2.3 \
//	  -X github.com/sidekickhq/sidekick/platform/buildinfo.Commit=abc123"
package buildinfo

// Version is the release version, "dev" when not stamped.
var Version = "dev"

// Commit is the source commit, empty when not stamped.
var Commit = ""

// String renders version and commit for logs and --version output.
func String() string {
	if Commit == "" {
		return Version
	}
	return Version + " (" + Commit + ")"
}
