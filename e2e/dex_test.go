package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// dexUser is a static password user of the test Dex instance. Password is
// what a person types; Dex only ever sees its bcrypt hash.
type dexUser struct {
	Username, Password, Email string
	Groups                    []string
}

// Dex users, one per portal role, plus one whose group maps to no role.
// Their groups reach the portal through `roles_claim: groups`.
var (
	dexOperator = dexUser{"op", "op-password", "op@example.com", []string{"jobs-operators"}}
	dexViewer   = dexUser{"view", "view-password", "view@example.com", []string{"jobs-viewers"}}
	dexAuditor  = dexUser{"audit", "audit-password", "audit@example.com", []string{"jobs-auditors"}}
	dexNobody   = dexUser{"nobody", "nobody-password", "nobody@example.com", []string{"marketing"}}
	// The author may approve too, so that only the rule "never your own
	// rollout" keeps them from approving what they wrote.
	dexAuthor   = dexUser{"author", "author-password", "author@example.com", []string{"jobs-authors", "jobs-approvers"}}
	dexApprover = dexUser{"approver", "approver-password", "approver@example.com", []string{"jobs-approvers"}}
	dexUsers    = []dexUser{dexOperator, dexViewer, dexAuditor, dexNobody, dexAuthor, dexApprover}
)

// dexPasswordHashes are made once per test binary at run time (bcrypt cost
// 10, as Dex requires ≥ 10): no hash is checked in, and the ~4 hashes cost
// well under a second together.
var dexPasswordHashes = sync.OnceValues(func() (map[string]string, error) {
	hashes := make(map[string]string, len(dexUsers))
	for _, u := range dexUsers {
		h, err := bcrypt.GenerateFromPassword([]byte(u.Password), 10)
		if err != nil {
			return nil, fmt.Errorf("bcrypt %s: %w", u.Username, err)
		}
		hashes[u.Username] = string(h)
	}
	return hashes, nil
})

// dexBinary finds the Dex binary (HUBJOBS_DEX_BIN, else the one
// scripts/install-deps.sh builds into .cache/bin) or stops the test.
func dexBinary(t testing.TB) string {
	t.Helper()
	path := os.Getenv("HUBJOBS_DEX_BIN")
	if path == "" {
		path = filepath.Join("..", ".cache", "bin", "dex")
	}
	if _, err := os.Stat(path); err != nil {
		requireInfra(t, "Dex not found at %s: %v", path, err)
	}
	return path
}

// dex is a running Dex instance.
type dex struct {
	Issuer       string // http://127.0.0.1:PORT/dex
	ClientID     string
	ClientSecret string
	proc         *process
}

// startDex starts Dex with a config made for this test: memory storage, no
// approval screen, one static client whose only redirect URI is the
// portal's callback, and the static users above. It must be called after the
// portal's port is known (redirectURI) and returns once discovery answers.
func startDex(t testing.TB, redirectURI string) *dex {
	t.Helper()
	bin := dexBinary(t)
	hashes, err := dexPasswordHashes()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	d := &dex{
		Issuer:       fmt.Sprintf("http://127.0.0.1:%d/dex", port),
		ClientID:     "hubjobs",
		ClientSecret: "e2e-client-secret",
	}
	type staticPassword struct {
		Email    string   `json:"email"`
		Hash     string   `json:"hash"`
		Username string   `json:"username"`
		UserID   string   `json:"userID"`
		Groups   []string `json:"groups"`
	}
	var passwords []staticPassword
	for _, u := range dexUsers {
		passwords = append(passwords, staticPassword{
			Email: u.Email, Hash: hashes[u.Username], Username: u.Username,
			UserID: "e2e-" + u.Username, Groups: u.Groups,
		})
	}
	// JSON is YAML, and encoding/json needs no quoting rules of its own.
	config := map[string]any{
		"issuer":  d.Issuer,
		"storage": map[string]any{"type": "memory"},
		"web":     map[string]any{"http": fmt.Sprintf("127.0.0.1:%d", port)},
		"oauth2":  map[string]any{"skipApprovalScreen": true, "responseTypes": []string{"code"}},
		"logger":  map[string]any{"level": "info"},
		"staticClients": []map[string]any{{
			"id": d.ClientID, "name": "hubjobs", "secret": d.ClientSecret,
			"redirectURIs": []string{redirectURI},
		}},
		"enablePasswordDB": true,
		"staticPasswords":  passwords,
	}
	b, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dex.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d.proc = startProcess(t, "dex", bin, "serve", path)
	d.proc.waitHTTP(t, d.Issuer+"/.well-known/openid-configuration", 15*time.Second)
	return d
}
