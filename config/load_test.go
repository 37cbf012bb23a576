package config

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/auth"
)

// Test fixtures: a 32-byte key and a connection string of the right shape.
const (
	testKey    = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // "0123456789abcdef0123456789abcdef"
	testKey2   = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=" // "fedcba9876543210fedcba9876543210"
	shortKey   = "MDEyMzQ1Njc4OWFiY2RlZg=="                     // 16 bytes
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

func mustParse(t *testing.T, yaml string, e env) *Config {
	t.Helper()
	cfg, err := Parse([]byte(yaml), e.get)
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return cfg
}

// roles is a role's claim values, joined for comparison.
func roles(cfg *Config, r auth.Role, sep string) string { return strings.Join(cfg.OIDC.Roles[r], sep) }

func TestConfigDefaults(t *testing.T) {
	cfg := mustParse(t, minimalConfig, nil)
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, "127.0.0.1:8080"},
		{"scopes", strings.Join(cfg.OIDC.Scopes, " "), "openid profile email"},
		{"roles_claim", cfg.OIDC.RolesClaim, "roles"},
		{"roles.viewer", roles(cfg, auth.RoleViewer, ","), "Jobs.Read"},
		{"roles.operator", roles(cfg, auth.RoleOperator, ","), "Jobs.Cancel"},
		{"roles.author", roles(cfg, auth.RoleAuthor, ","), "Jobs.Write"},
		{"roles.approver", roles(cfg, auth.RoleApprover, ","), "Jobs.Approve"},
		{"roles.auditor", roles(cfg, auth.RoleAuditor, ","), "Audit.Read"},
		{"roles.admin", roles(cfg, auth.RoleAdmin, ","), "Jobs.Admin"},
		{"idle_timeout", cfg.Session.IdleTimeout, 30 * time.Minute},
		{"absolute_timeout", cfg.Session.AbsoluteTimeout, 8 * time.Hour},
		{"jobs_ops_per_minute", cfg.Hubs[0].JobsOpsPerMinute, 100},
		{"queries_per_minute", cfg.Hubs[0].QueriesPerMinute, 20},
		{"max_active_jobs", cfg.Hubs[0].MaxActiveJobs, 1},
		{"authors", len(cfg.Hubs[0].Authors), 0},
		{"audit.database", cfg.Audit.Database, "sqlite:///var/lib/hubjobs/hubjobs.db"},
		{"log.format", cfg.Log.Format, "json"},
		{"log.level", cfg.Log.Level.String(), "INFO"},
		{"public_url", cfg.PublicURL, "https://jobs.example.com"},
		{"decoded session key", string(cfg.Session.Keys[0]), "0123456789abcdef0123456789abcdef"},
		{"parsed connection string host", cfg.Hubs[0].ConnectionString.HostName, "sim.azure-devices.net"},
		{"host from the connection string", cfg.Hubs[0].Host, "sim.azure-devices.net"},
		{"read_header_timeout", cfg.Server.ReadHeaderTimeout, 5 * time.Second},
		{"drain_delay", cfg.Server.DrainDelay, 5 * time.Second},
		{"rollouts.enabled", cfg.Rollouts.Enabled, true},
		{"rollouts.poll_interval", cfg.Rollouts.PollInterval, 15 * time.Second},
		{"rollouts.max_share_of_budget", cfg.Rollouts.MaxShareOfBudget, 0.5},
		{"rollouts.approval_over_devices", cfg.Rollouts.ApprovalOverDevices, 1000},
		{"notify.webhooks", len(cfg.Notify.Webhooks), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// The example file in the repository must stay loadable: it is documentation.
func TestConfigExampleFileLoads(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "config.example.yaml"), env{
		"HUBJOBS_SESSION_KEY":        testKey,
		"HUBJOBS_OIDC_CLIENT_SECRET": "s3cret",
		"PROD_HUB_CS":                testConnCS,
		"HUBJOBS_WEBHOOK_SECRET":     "hook-secret",
	}.get)
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if len(cfg.Hubs) != 2 || cfg.Hubs[1].ConnectionString != nil || cfg.Hubs[1].Host != "eu-fleet.azure-devices.net" ||
		cfg.Hubs[1].Operators[0] != "Jobs.Cancel.EU" || cfg.Hubs[1].Authors[0] != "Jobs.Write.EU" {
		t.Errorf("hubs = %+v", cfg.Hubs)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}; !slices.Equal(cfg.TrustedProxies, want) {
		t.Errorf("trusted proxies = %v, want %v", cfg.TrustedProxies, want)
	}
	if len(cfg.Notify.Webhooks) != 1 || string(cfg.Notify.Webhooks[0].Secret) != "hook-secret" || cfg.Notify.Webhooks[0].URL.Host != "hooks.example.com" {
		t.Errorf("webhooks = %+v", cfg.Notify.Webhooks)
	}
}

func TestConfigExpansion(t *testing.T) {
	tests := []struct {
		name, value string
		env         env
		want        string
	}{
		{"whole value", "${SECRET}", env{"SECRET": "abc"}, "abc"},
		{"inside text", "pre-${A}-${B}-post", env{"A": "1", "B": "2"}, "pre-1-2-post"},
		{"dollar escape", "pa$$word", nil, "pa$word"},
		{"escaped reference stays literal", "$${SECRET}", env{"SECRET": "abc"}, "${SECRET}"},
		{"lone dollar kept", "a$b $", nil, "a$b $"},
		// A value with YAML syntax in it cannot change the document's structure.
		{"value is never YAML", "${SECRET}", env{"SECRET": "x\nlisten: 0.0.0.0:1"}, "x\nlisten: 0.0.0.0:1"},
		{"null-looking value stays a string", "${SECRET}", env{"SECRET": "null"}, "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := strings.Replace(minimalConfig, "client_secret: s3cret", "client_secret: '"+tt.value+"'", 1)
			cfg := mustParse(t, yaml, tt.env)
			if cfg.OIDC.ClientSecret != tt.want {
				t.Errorf("client_secret = %q, want %q", cfg.OIDC.ClientSecret, tt.want)
			}
			if cfg.Listen != "127.0.0.1:8080" {
				t.Errorf("listen changed to %q", cfg.Listen)
			}
		})
	}
}

func TestConfigEnvOverrides(t *testing.T) {
	yaml := minimalConfig + `
  - name: eu-west
    host: eu.azure-devices.net
    credential: azure
`
	cfg := mustParse(t, yaml, env{
		"HUBJOBS_OIDC_CLIENT_SECRET":               "from-env",
		"HUBJOBS_SESSION_KEYS":                     testKey2 + ", " + testKey,
		"HUBJOBS_SESSION_IDLE_TIMEOUT":             "45m",
		"HUBJOBS_AUDIT_DATABASE":                   "postgres://hubjobs@db/hubjobs",
		"HUBJOBS_OIDC_ROLES_OPERATOR":              "Fleet.Ops,Fleet.Lead",
		"HUBJOBS_HUBS_EU_WEST_JOBS_OPS_PER_MINUTE": "50",
		"HUBJOBS_HUBS_EU_WEST_OPERATORS":           "Fleet.Lead",
		"HUBJOBS_HUBS_PROD_ENDPOINT":               "http://127.0.0.1:9000",
		"HUBJOBS_LOG_FORMAT":                       "text",
		"HUBJOBS_TRUSTED_PROXIES":                  "10.1.0.0/16,192.0.2.7",
		"HUBJOBS_LISTEN":                           "0.0.0.0:9090",
	})
	checks := []struct {
		name      string
		got, want any
	}{
		{"client_secret", cfg.OIDC.ClientSecret, "from-env"},
		{"session keys (first signs)", string(cfg.Session.Keys[0]), "fedcba9876543210fedcba9876543210"},
		{"session key count", len(cfg.Session.Keys), 2},
		{"idle_timeout", cfg.Session.IdleTimeout, 45 * time.Minute},
		{"audit.database", cfg.Audit.Database, "postgres://hubjobs@db/hubjobs"},
		{"roles.operator", roles(cfg, auth.RoleOperator, "|"), "Fleet.Ops|Fleet.Lead"},
		{"roles.viewer keeps default", roles(cfg, auth.RoleViewer, "|"), "Jobs.Read"},
		{"eu-west ops", cfg.Hubs[1].JobsOpsPerMinute, 50},
		{"eu-west operators", strings.Join(cfg.Hubs[1].Operators, "|"), "Fleet.Lead"},
		{"prod ops keeps default", cfg.Hubs[0].JobsOpsPerMinute, 100},
		{"prod endpoint", cfg.Hubs[0].Endpoint, "http://127.0.0.1:9000"},
		{"log.format", cfg.Log.Format, "text"},
		{"trusted proxy 2 as /32", cfg.TrustedProxies[1].String(), "192.0.2.7/32"},
		{"listen", cfg.Listen, "0.0.0.0:9090"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// An override replaces the file value before expansion, so a file that
// refers to an unset variable is fine when the key comes from the environment.
func TestConfigEnvOverrideSkipsFileExpansion(t *testing.T) {
	yaml := strings.Replace(minimalConfig, "client_secret: s3cret", "client_secret: ${UNSET_VAR}", 1)
	cfg := mustParse(t, yaml, env{"HUBJOBS_OIDC_CLIENT_SECRET": "$literal${X}"})
	if cfg.OIDC.ClientSecret != "$literal${X}" {
		t.Errorf("client_secret = %q; env values must be taken literally", cfg.OIDC.ClientSecret)
	}
}
