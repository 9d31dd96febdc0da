package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// EnvChildCPUs, when set to a CPU list ("1", "2-3"), pins the child to
// those CPUs with taskset(1); run the benchmark itself under taskset on
// the others, so the server and its load generator do not take turns on
// the same cores, as they would not on separate machines.
const EnvChildCPUs = "LOADGEN_CHILD_CPUS"

// The environment variables a child process is started with.
const (
	envGenerator = "LOADGEN_GENERATOR"
	envArgs      = "LOADGEN_ARGS"
)

// generator is load generated in a child process: it decodes its
// arguments, loads the target and returns a JSON-encodable result.
type generator func(ctx context.Context, args json.RawMessage) (any, error)

var (
	mu         sync.Mutex
	generators = map[string]generator{}
)

// Register makes g available to Spawn under name; Spawn's args are
// decoded into A. Register it in TestMain before calling RunChild.
func Register[A any](name string, g func(ctx context.Context, args A) (any, error)) {
	mu.Lock()
	defer mu.Unlock()
	generators[name] = func(ctx context.Context, raw json.RawMessage) (any, error) {
		var args A
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("decode arguments: %w", err)
		}
		return g(ctx, args)
	}
}

// RunChild runs the requested generator when this process was started by
// Spawn, writes its result as JSON to standard output and exits; otherwise
// it returns at once. Call it first in the package's TestMain:
//
//	func TestMain(m *testing.M) {
//		loadgen.RunChild()
//		os.Exit(m.Run())
//	}
func RunChild() {
	name := os.Getenv(envGenerator)
	if name == "" {
		return
	}
	mu.Lock()
	g := generators[name]
	mu.Unlock()
	if g == nil {
		fmt.Fprintf(os.Stderr, "loadgen: no generator %q registered\n", name)
		os.Exit(2)
	}
	out, err := g(context.Background(), json.RawMessage(os.Getenv(envArgs)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %s: %v\n", name, err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %s: encode result: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Spawn runs the generator registered as name in a new process of the
// running (test) binary, with args encoded as JSON, and decodes its result
// into out. The child shares the machine but not the Go scheduler with
// the caller, as a real client would.
func Spawn(ctx context.Context, name string, args, out any) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("loadgen: find the test binary: %w", err)
	}
	a, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("loadgen: encode arguments: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	if cpus := os.Getenv(EnvChildCPUs); cpus != "" {
		cmd = exec.CommandContext(ctx, "taskset", "--cpu-list", cpus, exe, "-test.run=^$")
	}
	cmd.Env = append(os.Environ(), envGenerator+"="+name, envArgs+"="+string(a))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("loadgen: %s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("loadgen: %s: decode result %q: %w", name, stdout.String(), err)
	}
	return nil
}
