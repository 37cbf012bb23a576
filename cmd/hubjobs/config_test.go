package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Loading and validation are tested in package config; these tests check
// what the command line makes of them: exit code 2 and every problem on
// stderr, one per line.

// Test fixtures shared by the command tests: a 32-byte key and a connection
// string of the right shape.
const (
	testKey    = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // "0123456789abcdef0123456789abcdef"
	testConnCS = "HostName=sim.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + testKey
)

// minimalConfig is the smallest valid file; cases edit it.
const minimalConfig = `
public_url: https://jobs.example.com
session:
  keys: ["` + testKey + `"]
oidc:
  issuer: https://idp.example.com/tenant/v2.0
  client_id: hubjobs
  client_secret: s3cret
hubs:
  - name: prod
    connection_string: "` + testConnCS + `"
`

// env is a fake environment for getenv.
type env map[string]string

func (e env) get(name string) string { return e[name] }

// serve with a bad config exits 2 and prints every problem, one per line.
func TestServeBadConfigExitCode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("lisen: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve", "--config", path},
		{"serve"},
		{"serve", "--config", filepath.Join(t.TempDir(), "missing.yaml")},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), args, env{}.get, &bytes.Buffer{}, &stderr)
		if code := exitCode(err, &stderr); code != 2 {
			t.Errorf("%v: exit code %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}

// Problems with the new keys stop serve the same way, all at once, naming
// keys and never a secret.
func TestServeReportsEveryProblemOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	bad := minimalConfig + `    max_active_jobs: 0
rollouts:
  max_share_of_budget: 2
notify:
  webhooks:
    - name: ops
      url: https://hooks.example.com/T0/TOKENVALUE
      events: [rollout.halted, rollout.exploded]
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", path}, env{}.get, &bytes.Buffer{}, &stderr)
	if code := exitCode(err, &stderr); code != 2 {
		t.Fatalf("exit code %d, want 2 (stderr %q)", code, stderr.String())
	}
	want := []string{
		"config: hubs[0].max_active_jobs: must be at least 1",
		"config: rollouts.max_share_of_budget: 2: want a share greater than 0 and at most 1, e.g. 0.5",
		"config: notify.webhooks[0].secret: required: the key receivers check the X-Hubjobs-Signature HMAC with",
		`config: notify.webhooks[0].events[1]: "rollout.exploded": want one of rollout.created, rollout.awaiting_approval, rollout.halted, rollout.completed, job.cancelled, job.finished_with_failures`,
	}
	if got := strings.TrimSuffix(stderr.String(), "\n"); got != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if strings.Contains(stderr.String(), "TOKENVALUE") {
		t.Errorf("the webhook URL was echoed: %s", stderr.String())
	}
}
