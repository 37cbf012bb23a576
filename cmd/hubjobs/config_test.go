package main

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func mustParse(t *testing.T, yaml string, e env) *config {
	t.Helper()
	cfg, err := parseConfig([]byte(yaml), e.get)
	if err != nil {
		t.Fatalf("parseConfig: unexpected error:\n%v", err)
	}
	return cfg
}

func TestConfigDefaults(t *testing.T) {
	cfg := mustParse(t, minimalConfig, nil)
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, "127.0.0.1:8080"},
		{"scopes", strings.Join(cfg.OIDC.Scopes, " "), "openid profile email"},
		{"roles_claim", cfg.OIDC.RolesClaim, "roles"},
		{"roles.viewer", strings.Join(cfg.OIDC.Roles.Viewer, ","), "Jobs.Read"},
		{"roles.operator", strings.Join(cfg.OIDC.Roles.Operator, ","), "Jobs.Cancel"},
		{"roles.auditor", strings.Join(cfg.OIDC.Roles.Auditor, ","), "Audit.Read"},
		{"roles.admin", strings.Join(cfg.OIDC.Roles.Admin, ","), "Jobs.Admin"},
		{"idle_timeout", cfg.Session.IdleTimeout, 30 * time.Minute},
		{"absolute_timeout", cfg.Session.AbsoluteTimeout, 8 * time.Hour},
		{"jobs_ops_per_minute", cfg.Hubs[0].JobsOpsPerMinute, 100},
		{"audit.database", cfg.Audit.Database, "sqlite:///var/lib/hubjobs/hubjobs.db"},
		{"log.format", cfg.Log.Format, "json"},
		{"decoded session key", string(cfg.Session.keys[0]), "0123456789abcdef0123456789abcdef"},
		{"parsed connection string host", cfg.Hubs[0].connString.HostName, "sim.azure-devices.net"},
		{"read_header_timeout", cfg.Server.ReadHeaderTimeout, 5 * time.Second},
		{"drain_delay", cfg.Server.DrainDelay, 5 * time.Second},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// The example file in the repository must stay loadable: it is documentation.
func TestConfigExampleFileLoads(t *testing.T) {
	cfg, err := loadConfig(filepath.Join("..", "..", "config.example.yaml"), env{
		"HUBJOBS_SESSION_KEY":        testKey,
		"HUBJOBS_OIDC_CLIENT_SECRET": "s3cret",
		"PROD_HUB_CS":                testConnCS,
	}.get)
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if len(cfg.Hubs) != 2 || cfg.Hubs[1].Credential != "azure" || cfg.Hubs[1].Operators[0] != "Jobs.Cancel.EU" {
		t.Errorf("hubs = %+v", cfg.Hubs)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}; len(cfg.trustedProxies) != 1 || cfg.trustedProxies[0] != want[0] {
		t.Errorf("trusted proxies = %v, want %v", cfg.trustedProxies, want)
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
		{"session keys (first signs)", string(cfg.Session.keys[0]), "fedcba9876543210fedcba9876543210"},
		{"session key count", len(cfg.Session.keys), 2},
		{"idle_timeout", cfg.Session.IdleTimeout, 45 * time.Minute},
		{"audit.database", cfg.Audit.Database, "postgres://hubjobs@db/hubjobs"},
		{"roles.operator", strings.Join(cfg.OIDC.Roles.Operator, "|"), "Fleet.Ops|Fleet.Lead"},
		{"roles.viewer keeps default", strings.Join(cfg.OIDC.Roles.Viewer, "|"), "Jobs.Read"},
		{"eu-west ops", cfg.Hubs[1].JobsOpsPerMinute, 50},
		{"eu-west operators", strings.Join(cfg.Hubs[1].Operators, "|"), "Fleet.Lead"},
		{"prod ops keeps default", cfg.Hubs[0].JobsOpsPerMinute, 100},
		{"prod endpoint", cfg.Hubs[0].Endpoint, "http://127.0.0.1:9000"},
		{"log.format", cfg.Log.Format, "text"},
		{"trusted proxy 2 as /32", cfg.trustedProxies[1].String(), "192.0.2.7/32"},
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

func TestConfigProblems(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string // applied to minimalConfig
		env  env
		want []string // every line of the error, in order
	}{
		{
			name: "not YAML",
			edit: func(string) string { return "listen: [unclosed" },
			want: []string{"config: not valid YAML: line 1: did not find expected ',' or ']'"},
		},
		{
			name: "empty file lists every required key",
			edit: func(string) string { return "" },
			want: []string{
				"config: public_url: required: the URL users open, e.g. https://jobs.example.com",
				"config: session.keys: required: at least one key of 32+ random bytes, standard base64 (e.g. `head -c32 /dev/urandom | base64`)",
				"config: oidc.issuer: required: the identity provider's issuer URL",
				"config: oidc.client_id: required",
				"config: oidc.client_secret: required (hubjobs is a confidential client)",
				"config: hubs: required: at least one hub",
			},
		},
		{
			name: "unknown keys at every level, with lines",
			edit: func(s string) string {
				s = strings.Replace(s, "oidc:\n", "oidc:\n  client_secert: x\n", 1)
				s = strings.Replace(s, "    connection_string", "    conection_string: x\n    connection_string", 1)
				return "lisen: 1.2.3.4:80\n" + s
			},
			want: []string{
				"config: lisen: unknown key (line 1); known keys here: listen, public_url, trusted_proxies, session, oidc, hubs, audit, log, server",
				"config: oidc.client_secert: unknown key (line 7); known keys here: issuer, client_id, client_secret, scopes, roles_claim, roles",
				"config: hubs[0].conection_string: unknown key (line 13); known keys here: name, connection_string, host, credential, endpoint, operators, jobs_ops_per_minute",
			},
		},
		{
			name: "unknown role name",
			edit: func(s string) string {
				return strings.Replace(s, "oidc:\n", "oidc:\n  roles:\n    superuser: [Everything]\n    operator: [\"\"]\n", 1)
			},
			want: []string{
				"config: oidc.roles.superuser: unknown key (line 7); known keys here: viewer, operator, auditor, admin",
				"config: oidc.roles.operator[0]: empty claim value",
			},
		},
		{
			name: "bad URLs",
			edit: func(s string) string {
				s = strings.Replace(s, "https://jobs.example.com", "jobs.example.com", 1)
				s = strings.Replace(s, "https://idp.example.com/tenant/v2.0", "http://idp.example.com/v2.0", 1)
				return strings.Replace(s, "    connection_string", "    endpoint: ftp://sim\n    connection_string", 1)
			},
			want: []string{
				`config: public_url: "jobs.example.com" is not an absolute http(s) URL`,
				`config: oidc.issuer: "http://idp.example.com/v2.0" must use https (http is allowed for loopback hosts only)`,
				`config: hubs[0].endpoint: "ftp://sim" is not an absolute http(s) URL`,
			},
		},
		{
			name: "public_url with a path, issuer with a query",
			edit: func(s string) string {
				s = strings.Replace(s, "https://jobs.example.com", "https://jobs.example.com/portal", 1)
				return strings.Replace(s, "https://idp.example.com/tenant/v2.0", "https://idp.example.com/tenant/v2.0?x=1", 1)
			},
			want: []string{
				`config: public_url: "https://jobs.example.com/portal" must be a bare origin without a path`,
				`config: oidc.issuer: "https://idp.example.com/tenant/v2.0?x=1" must not have a query or fragment`,
			},
		},
		{
			name: "session keys: bad base64, short, missing variable",
			edit: func(s string) string {
				return strings.Replace(s, `keys: ["`+testKey+`"]`, `keys: ["not base64!", "`+shortKey+`", "${NO_SUCH_KEY}"]`, 1)
			},
			want: []string{
				"config: session.keys[2]: ${NO_SUCH_KEY} is not set (line 4)",
				"config: session.keys[0]: not standard base64",
				"config: session.keys[1]: decodes to 16 bytes; need at least 32",
			},
		},
		{
			name: "bad durations",
			edit: func(s string) string {
				return strings.Replace(s, "session:\n", "session:\n  idle_timeout: 30 minutes\n  absolute_timeout: -1h\n", 1)
			},
			want: []string{
				`config: session.idle_timeout: "30 minutes" is not a duration (use e.g. 30s, 5m, 8h) (line 4)`,
				"config: session.absolute_timeout: must be positive",
			},
		},
		{
			name: "idle longer than absolute",
			edit: func(s string) string {
				return strings.Replace(s, "session:\n", "session:\n  idle_timeout: 9h\n", 1)
			},
			want: []string{"config: session.idle_timeout: 9h0m0s is longer than session.absolute_timeout 8h0m0s"},
		},
		{
			name: "hub names: bad, duplicate",
			edit: func(s string) string {
				return s + `  - name: prod
    host: a.azure-devices.net
    credential: azure
  - name: Prod_EU
    host: b.azure-devices.net
    credential: azure
`
			},
			want: []string{
				`config: hubs[1].name: "prod" is already the name of hubs[0]`,
				`config: hubs[2].name: "Prod_EU" must be 1-32 characters of a-z, 0-9 and -`,
			},
		},
		{
			name: "hub credentials: neither, both, half, unknown credential",
			edit: func(s string) string {
				return s + `  - name: neither
  - name: both
    connection_string: "` + testConnCS + `"
    host: b.azure-devices.net
    credential: azure
  - name: half
    credential: azure
  - name: wrong
    host: c.azure-devices.net
    credential: password
`
			},
			want: []string{
				"config: hubs[1]: needs connection_string (SAS) or host + credential (Entra ID)",
				"config: hubs[2]: set either connection_string (SAS) or host + credential (Entra ID), not both",
				"config: hubs[3].host: required with credential: the hub's host name, e.g. myhub.azure-devices.net",
				`config: hubs[4].credential: "password": want azure (azidentity DefaultAzureCredential)`,
			},
		},
		{
			name: "a value that failed to expand is not also reported missing",
			edit: func(s string) string {
				return strings.Replace(s, `"`+testConnCS+`"`, "${PROD_HUB_CS}", 1)
			},
			want: []string{"config: hubs[0].connection_string: ${PROD_HUB_CS} is not set (line 11)"},
		},
		{
			name: "bad connection string is not echoed",
			edit: func(s string) string {
				return strings.Replace(s, testConnCS, "HostName=x;SharedAccessKey=SECRETVALUE", 1)
			},
			want: []string{"config: hubs[0].connection_string: not a valid IoT Hub connection string (want HostName=…;SharedAccessKeyName=…;SharedAccessKey=…)"},
		},
		{
			name: "database scheme, proxies, listen, ops, log",
			edit: func(s string) string {
				return s + `    jobs_ops_per_minute: 0
audit:
  database: mysql://root@db/x
trusted_proxies: [10.0.0.0/33, lb.internal]
listen: 8080
log:
  format: xml
  level: loud
`
			},
			want: []string{
				`config: listen: "8080" is not host:port (e.g. 127.0.0.1:8080 or 0.0.0.0:8080)`,
				`config: trusted_proxies[0]: "10.0.0.0/33" is not a CIDR like 10.0.0.0/8 or an IP address`,
				`config: trusted_proxies[1]: "lb.internal" is not a CIDR like 10.0.0.0/8 or an IP address`,
				"config: hubs[0].jobs_ops_per_minute: must be at least 1",
				`config: audit.database: unknown database scheme "mysql": want sqlite or postgres`,
				`config: log.format: "xml": want json or text`,
				`config: log.level: "loud": want debug, info, warn or error`,
			},
		},
		{
			name: "wrong shapes",
			edit: func(s string) string {
				s = strings.Replace(s, "oidc:\n", "oidc:\n  scopes: openid\n  roles: [viewer]\n", 1)
				return strings.Replace(s, "session:\n", "server: 5\nsession:\n", 1)
			},
			want: []string{
				"config: oidc.scopes: must be a list (line 7)",
				"config: oidc.roles: must be a mapping of keys (line 8)",
				"config: server: must be a mapping of keys (line 3)",
			},
		},
		{
			name: "env override that does not parse names the variable",
			edit: func(s string) string { return s },
			env:  env{"HUBJOBS_HUBS_PROD_JOBS_OPS_PER_MINUTE": "lots", "HUBJOBS_SERVER_DRAIN_DELAY": "soon"},
			want: []string{
				`config: hubs[0].jobs_ops_per_minute: "lots" is not a whole number (from HUBJOBS_HUBS_PROD_JOBS_OPS_PER_MINUTE)`,
				`config: server.drain_delay: "soon" is not a duration (use e.g. 30s, 5m, 8h) (from HUBJOBS_SERVER_DRAIN_DELAY)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.edit(minimalConfig)), tt.env.get)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error = %v (%T), want *usageError", err, err)
			}
			got := strings.Split(ue.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", ue.Error(), strings.Join(tt.want, "\n"))
			}
			if strings.Contains(ue.Error(), "SECRETVALUE") || strings.Contains(ue.Error(), testKey) {
				t.Errorf("a secret was echoed: %s", ue.Error())
			}
		})
	}
}

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
