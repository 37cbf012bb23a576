package config

import (
	"errors"
	"strings"
	"testing"
)

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
				"config: lisen: unknown key (line 1); known keys here: listen, public_url, trusted_proxies, session, oidc, hubs, audit, log, server, rollouts, notify",
				"config: oidc.client_secert: unknown key (line 7); known keys here: issuer, client_id, client_secret, scopes, roles_claim, roles",
				"config: hubs[0].conection_string: unknown key (line 13); known keys here: name, connection_string, host, credential, endpoint, operators, authors, jobs_ops_per_minute, queries_per_minute, max_active_jobs",
			},
		},
		{
			name: "unknown role name",
			edit: func(s string) string {
				return strings.Replace(s, "oidc:\n", "oidc:\n  roles:\n    superuser: [Everything]\n    operator: [\"\"]\n", 1)
			},
			want: []string{
				"config: oidc.roles.superuser: unknown key (line 7); known keys here: viewer, operator, author, approver, auditor, admin",
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
			_, err := Parse([]byte(tt.edit(minimalConfig)), tt.env.get)
			var ue *Error
			if !errors.As(err, &ue) {
				t.Fatalf("error = %v (%T), want *Error", err, err)
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
