package loadgen

import (
	"context"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

func init() {
	Register("affinity", func(context.Context, struct{}) (any, error) {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			return nil, err
		}
		var cpus []int
		for i := range 1024 {
			if set.IsSet(i) {
				cpus = append(cpus, i)
			}
		}
		return cpus, nil
	})
}

func TestSpawnPinsTheChild(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset (util-linux) is not installed")
	}
	t.Setenv(EnvChildCPUs, "0")
	var cpus []int
	if err := Spawn(context.Background(), "affinity", struct{}{}, &cpus); err != nil {
		t.Fatal(err)
	}
	if len(cpus) != 1 || cpus[0] != 0 {
		t.Fatalf("the child ran on CPUs %v, want [0]", cpus)
	}
}
