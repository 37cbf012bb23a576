package main

import (
	"debug/elf"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// nobody is the uid/gid the binary runs as when the tests run as root
// (distroless's nonroot is 65532; any unprivileged id proves the point).
const nobody = 65534

// The image cannot be built here (no container engine), so this checks what
// the Dockerfile relies on: the binary built as it builds it is static (no
// interpreter, no shared libraries: distroless/static has no libc), and it
// serves as a non-root user from a read-only working directory with its
// data in a volume-like directory of its own.
func TestBinaryIsStaticAndRunsAsNonRootReadOnly(t *testing.T) {
	bin := hubjobsBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
	f.Close()

	root := os.Geteuid() == 0
	dataDir := readableDir(t, 0o700)
	configDir := readableDir(t, 0o755)
	workDir := readableDir(t, 0o555) // read-only, like the image's / with readOnlyRootFilesystem
	if root {
		if err := os.Chown(dataDir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	w := newWorld(t)
	setup := newPortalSetup(t, w, "sqlite://"+filepath.Join(dataDir, "hubjobs.db"), "server:\n  drain_delay: 0s\n")
	config, err := os.ReadFile(setup.configPath)
	if err != nil {
		t.Fatal(err)
	}
	setup.configPath = filepath.Join(configDir, "config.yaml")
	if err := os.WriteFile(setup.configPath, config, 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "serve", "--config", setup.configPath)
	cmd.Dir = workDir
	cmd.Env = append(setup.environ(), "HOME="+workDir)
	if root {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	var output testkit.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("serve output:\n%s", output.String())
		}
	})
	waitStatus(t, setup.publicURL+"/healthz", http.StatusOK, 10*time.Second)
	waitStatus(t, setup.publicURL+"/readyz", http.StatusOK, 10*time.Second)

	uid := processUID(t, cmd.Process.Pid)
	if uid == "0" || (root && uid != fmt.Sprint(nobody)) {
		t.Errorf("serve runs as uid %s, want a non-root user", uid)
	}
	if entries, _ := os.ReadDir(workDir); len(entries) > 0 {
		t.Errorf("serve wrote into its working directory: %v", entries)
	}
	sigtermAndWait(t, "serve", cmd, done)
}

// readableDir is a fresh directory with mode perm whose parents a non-root
// user can traverse (t.TempDir's parents are owner-only).
func readableDir(t *testing.T, perm os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hubjobs-container-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Chmod(dir, 0o700)
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	return dir
}

// processUID is the real uid of a running process, from /proc.
func processUID(t *testing.T, pid int) string {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatal("no Uid line in /proc status")
	return ""
}
