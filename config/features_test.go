package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/notify"
)

// featuresConfig is minimalConfig with every rollout and notification key set.
const featuresConfig = minimalConfig + `    authors: [Jobs.Write.Prod]
    queries_per_minute: 40
    max_active_jobs: 5
rollouts:
  enabled: false
  poll_interval: 30s
  max_share_of_budget: 0.25
  approval_over_devices: 0
notify:
  webhooks:
    - name: ops-channel
      url: https://hooks.example.com/services/T0/B0/TOKEN
      secret: ${HOOK_SECRET}
      events: [rollout.halted, job.cancelled]
      format: slack
    - name: siem
      url: http://siem.internal:8080/hubjobs
      secret: siem-key
      events: [rollout.created]
`

func parseFeatures(t *testing.T, e env) *Config {
	t.Helper()
	return mustParse(t, featuresConfig, e)
}

func TestRolloutAndNotifyKeys(t *testing.T) {
	cfg := parseFeatures(t, env{"HOOK_SECRET": "s3cr3t-hmac"})
	ops, siem := cfg.Notify.Webhooks[0], cfg.Notify.Webhooks[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"hub authors", strings.Join(cfg.Hubs[0].Authors, ","), "Jobs.Write.Prod"},
		{"hub queries_per_minute", cfg.Hubs[0].QueriesPerMinute, 40},
		{"hub max_active_jobs", cfg.Hubs[0].MaxActiveJobs, 5},
		{"rollouts.enabled", cfg.Rollouts.Enabled, false},
		{"rollouts.poll_interval", cfg.Rollouts.PollInterval, 30 * time.Second},
		{"rollouts.max_share_of_budget", cfg.Rollouts.MaxShareOfBudget, 0.25},
		{"rollouts.approval_over_devices", cfg.Rollouts.ApprovalOverDevices, 0},
		{"webhook count", len(cfg.Notify.Webhooks), 2},
		{"webhook name", ops.Name, "ops-channel"},
		{"webhook url parsed", ops.URL.Path, "/services/T0/B0/TOKEN"},
		{"webhook secret expanded", string(ops.Secret), "s3cr3t-hmac"},
		{"webhook events", strings.Join(ops.Events, ","), "rollout.halted,job.cancelled"},
		{"webhook format", ops.Format, notify.FormatSlack},
		{"http allowed for webhooks", siem.URL.Scheme, "http"},
		{"format defaults to json", siem.Format, notify.FormatJSON},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestRolloutAndNotifyEnvOverrides(t *testing.T) {
	cfg := parseFeatures(t, env{
		"HOOK_SECRET": "from-file",
		"HUBJOBS_NOTIFY_WEBHOOKS_OPS_CHANNEL_SECRET":    "from-env",
		"HUBJOBS_NOTIFY_WEBHOOKS_SIEM_EVENTS":           "job.cancelled, rollout.completed",
		"HUBJOBS_ROLLOUTS_ENABLED":                      "true",
		"HUBJOBS_ROLLOUTS_MAX_SHARE_OF_BUDGET":          "1",
		"HUBJOBS_ROLLOUTS_POLL_INTERVAL":                "1s",
		"HUBJOBS_ROLLOUTS_APPROVAL_OVER_DEVICES":        "250",
		"HUBJOBS_OIDC_ROLES_AUTHOR":                     "Fleet.Author",
		"HUBJOBS_OIDC_ROLES_APPROVER":                   "Fleet.Approver,Fleet.Lead",
		"HUBJOBS_HUBS_PROD_MAX_ACTIVE_JOBS":             "10",
		"HUBJOBS_HUBS_PROD_QUERIES_PER_MINUTE":          "100",
		"HUBJOBS_HUBS_PROD_AUTHORS":                     "A,B",
		"HUBJOBS_NOTIFY_WEBHOOKS_NOT_CONFIGURED_SECRET": "ignored: the environment cannot add a webhook",
	})
	checks := []struct {
		name      string
		got, want any
	}{
		{"webhook secret", string(cfg.Notify.Webhooks[0].Secret), "from-env"},
		{"webhook events", strings.Join(cfg.Notify.Webhooks[1].Events, "|"), "job.cancelled|rollout.completed"},
		{"webhook count", len(cfg.Notify.Webhooks), 2},
		{"rollouts.enabled", cfg.Rollouts.Enabled, true},
		{"rollouts.max_share_of_budget", cfg.Rollouts.MaxShareOfBudget, 1.0},
		{"rollouts.poll_interval", cfg.Rollouts.PollInterval, time.Second},
		{"rollouts.approval_over_devices", cfg.Rollouts.ApprovalOverDevices, 250},
		{"roles.author", roles(cfg, auth.RoleAuthor, "|"), "Fleet.Author"},
		{"roles.approver", roles(cfg, auth.RoleApprover, "|"), "Fleet.Approver|Fleet.Lead"},
		{"max_active_jobs", cfg.Hubs[0].MaxActiveJobs, 10},
		{"queries_per_minute", cfg.Hubs[0].QueriesPerMinute, 100},
		{"authors", strings.Join(cfg.Hubs[0].Authors, "|"), "A|B"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestRolloutAndNotifyProblems(t *testing.T) {
	const secret = "TOPSECRETHMAC"
	tests := []struct {
		name string
		yaml string // appended to minimalConfig
		env  env
		want []string
	}{
		{
			name: "hub limits and authors",
			yaml: "    authors: [\" \"]\n    queries_per_minute: 0\n    max_active_jobs: -1\n",
			want: []string{
				"config: hubs[0].authors[0]: empty claim value",
				"config: hubs[0].queries_per_minute: must be at least 1",
				"config: hubs[0].max_active_jobs: must be at least 1",
			},
		},
		{
			name: "rollout values out of range",
			yaml: "rollouts:\n  poll_interval: 500ms\n  max_share_of_budget: 0\n  approval_over_devices: -5\n",
			want: []string{
				"config: rollouts.poll_interval: must be at least 1s",
				"config: rollouts.max_share_of_budget: 0: want a share greater than 0 and at most 1, e.g. 0.5",
				"config: rollouts.approval_over_devices: must not be negative (0: no wave needs an approver)",
			},
		},
		{
			name: "rollout values that do not parse",
			yaml: "rollouts:\n  enabled: yes\n  max_share_of_budget: half\n",
			want: []string{
				`config: rollouts.enabled: "yes": want true or false (line 13)`,
				`config: rollouts.max_share_of_budget: "half" is not a number (line 14)`,
			},
		},
		{
			name: "share above one, from the environment",
			env:  env{"HUBJOBS_ROLLOUTS_MAX_SHARE_OF_BUDGET": "1.5", "HUBJOBS_ROLLOUTS_ENABLED": "on"},
			want: []string{
				`config: rollouts.enabled: "on": want true or false (from HUBJOBS_ROLLOUTS_ENABLED)`,
				"config: rollouts.max_share_of_budget: 1.5: want a share greater than 0 and at most 1, e.g. 0.5",
			},
		},
		{
			name: "every webhook problem at once, no value echoed",
			yaml: `notify:
  webhooks:
    - name: ops
      url: ftp://hooks.example.com/` + secret + `
      events: [rollout.halted, rollout.exploded, rollout.halted]
      format: xml
    - name: ops
      url: https://hooks.example.com/x
      secret: ` + secret + `
    - name: Bad_Name
      url: "https://user:` + secret + `@%zz"
      secret: ${UNSET_HOOK_SECRET}
      events: [job.cancelled]
    - url: https://hooks.example.com/y
      secret: s
      events: [job.cancelled]
`,
			want: []string{
				"config: notify.webhooks[2].secret: ${UNSET_HOOK_SECRET} is not set (line 23)",
				"config: notify.webhooks[0].url: not an absolute http or https URL (the value is not shown: it may hold a token)",
				"config: notify.webhooks[0].secret: required: the key receivers check the X-Hubjobs-Signature HMAC with",
				"config: notify.webhooks[0].events[1]: \"rollout.exploded\": want one of rollout.created, rollout.awaiting_approval, rollout.halted, rollout.completed, job.cancelled, job.finished_with_failures",
				"config: notify.webhooks[0].events[2]: \"rollout.halted\" is listed twice",
				`config: notify.webhooks[0].format: "xml": want json or slack`,
				`config: notify.webhooks[1].name: "ops" is already the name of notify.webhooks[0]`,
				"config: notify.webhooks[1].events: required: at least one of rollout.created, rollout.awaiting_approval, rollout.halted, rollout.completed, job.cancelled, job.finished_with_failures",
				`config: notify.webhooks[2].name: "Bad_Name" must be 1-64 characters of a-z, 0-9 and -`,
				"config: notify.webhooks[2].url: not an absolute http or https URL (the value is not shown: it may hold a token)",
				`config: notify.webhooks[3].name: "" must be 1-64 characters of a-z, 0-9 and -`,
			},
		},
		{
			name: "webhooks must be a list of mappings",
			yaml: "notify:\n  webhooks: {name: x}\n",
			want: []string{"config: notify.webhooks: must be a list (line 13)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimalConfig+tt.yaml), tt.env.get)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v (%T), want *Error", err, err)
			}
			if got, want := ce.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, want)
			}
			if strings.Contains(ce.Error(), secret) {
				t.Errorf("a secret was echoed: %s", ce.Error())
			}
			for _, p := range ce.Problems {
				if p.Key == "" || !strings.HasPrefix(p.String(), "config: "+p.Key+": ") {
					t.Errorf("problem %q does not name its key %q", p, p.Key)
				}
			}
		})
	}
}

// A webhook secret prints as a placeholder whichever way it is printed.
func TestSecretNeverPrinted(t *testing.T) {
	cfg := parseFeatures(t, env{"HOOK_SECRET": "s3cr3t-hmac"})
	hook := cfg.Notify.Webhooks[0]
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("webhook", "secret", hook.Secret, "hook", hook)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("webhook", "secret", hook.Secret)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", hook),
		"%+v":  fmt.Sprintf("%+v", hook),
		"%#v":  fmt.Sprintf("%#v", hook),
		"%s":   fmt.Sprintf("%s", hook.Secret),
		"%x":   fmt.Sprintf("%x", hook.Secret),
		"slog": logged.String(),
	}
	for how, out := range outputs {
		if strings.Contains(out, "s3cr3t-hmac") || strings.Contains(out, fmt.Sprintf("%x", []byte("s3cr3t-hmac"))) {
			t.Errorf("%s printed the secret: %s", how, out)
		}
	}
}

func TestAuditDatabase(t *testing.T) {
	// A copy of the portal's config on a bastion host: its secrets are
	// variables the auditor does not have, and it even holds a key this
	// version does not know. Only audit.database matters.
	portalConfig := `
public_url: ${PUBLIC_URL}
session: {keys: ["${HUBJOBS_SESSION_KEY}"]}
oidc: {client_secret: "${HUBJOBS_OIDC_CLIENT_SECRET}"}
hubs: [{name: prod, connection_string: "${PROD_HUB_CS}"}]
future_key: 1
audit:
  database: %s
`
	tests := []struct {
		name     string
		file     string
		env      env
		want     string
		wantErrs []string
	}{
		{name: "from the file", file: fmt.Sprintf(portalConfig, "sqlite:///srv/audit.db"), want: "sqlite:///srv/audit.db"},
		{name: "expanded", file: fmt.Sprintf(portalConfig, "postgres://auditor:${PGPASS}@db/hubjobs"), env: env{"PGPASS": "pw"}, want: "postgres://auditor:pw@db/hubjobs"},
		{name: "overridden", file: fmt.Sprintf(portalConfig, "${UNSET}"), env: env{"HUBJOBS_AUDIT_DATABASE": "sqlite://x.db"}, want: "sqlite://x.db"},
		{name: "default when absent", file: "hubs: []\n", want: DefaultDatabase},
		{name: "unset variable", file: fmt.Sprintf(portalConfig, "${UNSET}"), wantErrs: []string{"config: audit.database: ${UNSET} is not set (line 8)"}},
		{name: "bad shape, not echoed", file: fmt.Sprintf(portalConfig, "mysql://root:pw@db/x"), wantErrs: []string{`config: audit.database: unknown database scheme "mysql": want sqlite or postgres`}},
		{name: "audit not a mapping", file: "audit: sqlite:///x.db\n", wantErrs: []string{"config: audit: must be a mapping of keys (line 1)"}},
		{name: "not YAML", file: "audit: [", wantErrs: []string{"config: not valid YAML: line 1: did not find expected node content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hubjobs.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := AuditDatabase(path, tt.env.get)
			if tt.wantErrs == nil {
				if err != nil || got != tt.want {
					t.Errorf("AuditDatabase = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Error() != strings.Join(tt.wantErrs, "\n") {
				t.Errorf("error = %v, want %q", err, tt.wantErrs)
			}
		})
	}
	if _, err := AuditDatabase(filepath.Join(t.TempDir(), "missing.yaml"), env{}.get); !errors.As(err, new(*Error)) {
		t.Errorf("missing file: error = %v, want *Error", err)
	}
}
