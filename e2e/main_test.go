package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// workDir is a temporary directory for the whole test binary: the hubjobs
// binary is built into it once and shared by every test.
var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hubjobs-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	workDir = dir
	// Artifacts describe the last run only.
	if err := os.RemoveAll("artifacts"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	stopChromium()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hubjobsBinary builds ./cmd/hubjobs once per test binary (lazily, so that
// `go test -run` of a test that needs no binary does not pay for it) and
// returns its path. The build is the real product build, without -race: the
// e2e tests exercise the binary from outside, and the race detector would
// only slow the browser flows down.
var hubjobsBinary = sync.OnceValues(func() (string, error) {
	out := filepath.Join(workDir, "hubjobs")
	start := time.Now()
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", out, "./cmd/hubjobs")
	cmd.Dir = ".." // module root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/hubjobs: %w\n%s", err, b)
	}
	fmt.Fprintf(os.Stderr, "e2e: built hubjobs in %s\n", time.Since(start).Round(time.Millisecond))
	return out, nil
})

// binary returns the built hubjobs binary or fails the test.
func binary(t testing.TB) string {
	t.Helper()
	bin, err := hubjobsBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
