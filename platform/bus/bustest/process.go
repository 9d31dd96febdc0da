package bustest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus/embedded"
)

// envServeStore, set in a child process, makes ServeChild run a NATS server
// with its store there.
const envServeStore = "BUSTEST_NATS_STORE"

// ServeChild runs a NATS server with JetStream when this process was
// started by StartProcess, and exits when its parent closes standard
// input; otherwise it returns at once. Call it first in the package's
// TestMain:
//
//	func TestMain(m *testing.M) {
//		bustest.ServeChild()
//		os.Exit(m.Run())
//	}
func ServeChild() {
	dir := os.Getenv(envServeStore)
	if dir == "" {
		return
	}
	srv, err := embedded.Start(embedded.Config{Host: "127.0.0.1", Port: -1, StoreDir: dir, ServerName: "bustest-process"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "bustest: start nats: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(srv.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it, or dies
	srv.Shutdown()
	srv.WaitForShutdown()
	os.Exit(0)
}

// StartProcess starts a NATS server with JetStream in a process of its own
// (the running test binary again, which must call ServeChild in TestMain),
// with its store in t.TempDir(), provisions every Sidekick stream and
// returns a JetStream handle on a connection closed when the test ends.
// Benchmarks use it to measure a service the way it is deployed, with NATS
// not sharing its Go runtime (scheduler, heap, garbage collector).
func StartProcess(t testing.TB) jetstream.JetStream {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("find the test binary: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envServeStore+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nats process: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stdin.Close()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		t.Fatalf("nats process did not say its URL (does TestMain call bustest.ServeChild?): %v", err)
	}
	// A Server with only a URL: Connect works, Shutdown does nothing.
	_, js := (&Server{url: strings.TrimSpace(line)}).Connect(t)
	provision(t, js)
	return js
}
