package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
)

// validate checks the document's values across keys and builds the typed
// Config from them. Problems go to d; the Config is only meaningful when
// there are none.
func (d *decoder) validate(doc *document) *Config {
	cfg := &Config{Listen: doc.Listen, Audit: doc.Audit, Server: doc.Server, Rollouts: doc.Rollouts}
	if err := checkListen(doc.Listen); err != nil {
		d.problem("listen", "%v", err)
	}
	if doc.PublicURL == "" {
		d.problem("public_url", "required: the URL users open, e.g. https://jobs.example.com")
	} else if err := checkURL(doc.PublicURL, true); err != nil {
		d.problem("public_url", "%v", err)
	} else {
		u, _ := url.Parse(doc.PublicURL) // checkURL parsed it
		cfg.PublicURL = u.Scheme + "://" + strings.ToLower(u.Host)
	}
	for i, p := range doc.TrustedProxies {
		prefix, err := parsePrefix(p)
		if err != nil {
			d.problem(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not a CIDR like 10.0.0.0/8 or an IP address", p)
			continue
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, prefix)
	}
	cfg.Session = d.validateSession(doc.Session)
	cfg.OIDC = d.validateOIDC(doc.OIDC)
	cfg.Hubs = d.validateHubs(doc.Hubs)
	d.checkDatabase(doc.Audit.Database)
	cfg.Log = d.validateLog(doc.Log)
	d.validateServer(doc.Server)
	d.validateRollouts(doc.Rollouts)
	cfg.Notify = d.validateNotify(doc.Notify)
	return cfg
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:8080 or 0.0.0.0:8080)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number 0-65535", addr)
	}
	if strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("%q: bad host", addr)
	}
	return nil
}

// checkURL accepts an absolute https URL without query or fragment, or http
// for a loopback host (local runs and tests): cookies, tokens and SAS
// signatures are only safe over TLS. With originOnly the path must be empty.
func checkURL(raw string, originOnly bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not contain credentials", raw)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q must use https (http is allowed for loopback hosts only)", raw)
	}
	if originOnly && strings.Trim(u.Path, "/") != "" {
		return fmt.Errorf("%q must be a bare origin without a path", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#") {
		return fmt.Errorf("%q must not have a query or fragment", raw)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parsePrefix accepts a CIDR or a single address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

func (d *decoder) validateSession(s docSession) Session {
	out := Session{IdleTimeout: s.IdleTimeout, AbsoluteTimeout: s.AbsoluteTimeout}
	if len(s.Keys) == 0 {
		d.problem("session.keys", "required: at least one key of %d+ random bytes, standard base64 (e.g. `head -c32 /dev/urandom | base64`)", MinSessionKeyBytes)
	}
	for i, k := range s.Keys {
		key := fmt.Sprintf("session.keys[%d]", i)
		raw, err := base64.StdEncoding.DecodeString(k)
		switch {
		case err != nil:
			d.problem(key, "not standard base64")
		case len(raw) < MinSessionKeyBytes:
			d.problem(key, "decodes to %d bytes; need at least %d", len(raw), MinSessionKeyBytes)
		default:
			out.Keys = append(out.Keys, raw)
		}
	}
	if s.IdleTimeout <= 0 {
		d.problem("session.idle_timeout", "must be positive")
	}
	if s.AbsoluteTimeout <= 0 {
		d.problem("session.absolute_timeout", "must be positive")
	} else if s.IdleTimeout > s.AbsoluteTimeout {
		d.problem("session.idle_timeout", "%s is longer than session.absolute_timeout %s", s.IdleTimeout, s.AbsoluteTimeout)
	}
	return out
}

func (d *decoder) validateOIDC(o docOIDC) OIDC {
	if o.Issuer == "" {
		d.problem("oidc.issuer", "required: the identity provider's issuer URL")
	} else if err := checkURL(o.Issuer, false); err != nil {
		d.problem("oidc.issuer", "%v", err)
	}
	if o.ClientID == "" {
		d.problem("oidc.client_id", "required")
	}
	if o.ClientSecret == "" {
		d.problem("oidc.client_secret", "required (hubjobs is a confidential client)")
	}
	if !slices.Contains(o.Scopes, "openid") {
		d.problem("oidc.scopes", "must include openid")
	}
	if o.RolesClaim == "" || strings.HasPrefix(o.RolesClaim, ".") || strings.HasSuffix(o.RolesClaim, ".") || strings.Contains(o.RolesClaim, "..") {
		d.problem("oidc.roles_claim", "%q is not a claim name or dotted path", o.RolesClaim)
	}
	roles := []struct {
		role   auth.Role
		values []string
	}{
		{auth.RoleViewer, o.Roles.Viewer},
		{auth.RoleOperator, o.Roles.Operator},
		{auth.RoleAuthor, o.Roles.Author},
		{auth.RoleApprover, o.Roles.Approver},
		{auth.RoleAuditor, o.Roles.Auditor},
		{auth.RoleAdmin, o.Roles.Admin},
	}
	roleMap := make(map[auth.Role][]string, len(roles))
	for _, r := range roles {
		d.checkClaimValues("oidc.roles."+string(r.role), r.values)
		roleMap[r.role] = r.values
	}
	return OIDC{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes, RolesClaim: o.RolesClaim, Roles: roleMap}
}

// checkClaimValues refuses blank claim values: they would match nothing in
// a token, so they only ever hide a typo.
func (d *decoder) checkClaimValues(key string, values []string) {
	for i, v := range values {
		if strings.TrimSpace(v) == "" {
			d.problem(fmt.Sprintf("%s[%d]", key, i), "empty claim value")
		}
	}
}

func (d *decoder) validateHubs(docs []docHub) []Hub {
	if len(docs) == 0 {
		d.problem("hubs", "required: at least one hub")
	}
	hubs := make([]Hub, 0, len(docs))
	seen := map[string]int{}
	for i, h := range docs {
		entry := fmt.Sprintf("hubs[%d]", i)
		key := func(k string) string { return entry + "." + k }
		switch first, dup := seen[h.Name]; {
		case !hub.ValidHubName(h.Name):
			d.problem(key("name"), "%q must be 1-32 characters of a-z, 0-9 and -", h.Name)
		case dup:
			d.problem(key("name"), "%q is already the name of hubs[%d]", h.Name, first)
		default:
			seen[h.Name] = i
		}
		out := Hub{
			Name: h.Name, Host: h.Host, Endpoint: h.Endpoint, Operators: h.Operators, Authors: h.Authors,
			JobsOpsPerMinute: h.JobsOpsPerMinute, QueriesPerMinute: h.QueriesPerMinute, MaxActiveJobs: h.MaxActiveJobs,
		}
		sas, entra := h.ConnectionString != "", h.Host != "" || h.Credential != ""
		switch {
		case sas && entra:
			d.problem(entry, "set either connection_string (SAS) or host + credential (Entra ID), not both")
		case !sas && !entra:
			d.problem(entry, "needs connection_string (SAS) or host + credential (Entra ID)")
		case sas:
			cs, err := hub.ParseConnectionString(h.ConnectionString)
			if err != nil {
				d.problem(key("connection_string"), "not a valid IoT Hub connection string (want HostName=…;SharedAccessKeyName=…;SharedAccessKey=…)")
				break
			}
			out.ConnectionString, out.Host = &cs, cs.HostName
		default:
			if h.Host == "" {
				d.problem(key("host"), "required with credential: the hub's host name, e.g. myhub.azure-devices.net")
			} else if !hostRE.MatchString(h.Host) {
				d.problem(key("host"), "%q is not a host name", h.Host)
			}
			if h.Credential != credentialAzure {
				d.problem(key("credential"), "%q: want %s (azidentity DefaultAzureCredential)", h.Credential, credentialAzure)
			}
		}
		if h.Endpoint != "" {
			if err := checkURL(h.Endpoint, false); err != nil {
				d.problem(key("endpoint"), "%v", err)
			}
		}
		d.checkClaimValues(key("operators"), h.Operators)
		d.checkClaimValues(key("authors"), h.Authors)
		d.atLeast(key("jobs_ops_per_minute"), h.JobsOpsPerMinute, 1)
		d.atLeast(key("queries_per_minute"), h.QueriesPerMinute, 1)
		d.atLeast(key("max_active_jobs"), h.MaxActiveJobs, 1)
		hubs = append(hubs, out)
	}
	return hubs
}

func (d *decoder) atLeast(key string, n, least int) {
	if n < least {
		d.problem(key, "must be at least %d", least)
	}
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$`)

// checkDatabase checks the DSN's shape; audit.Open does the rest. The DSN
// may hold a password, so no message quotes it.
func (d *decoder) checkDatabase(dsn string) {
	if err := databaseShape(dsn); err != nil {
		d.problem("audit.database", "%v", err)
	}
}

func databaseShape(dsn string) error {
	scheme, rest, ok := strings.Cut(dsn, "://")
	switch {
	case !ok:
		return errors.New("want sqlite:///path/to/file.db or postgres://user@host/db")
	case scheme == "sqlite":
		if rest == "" || strings.HasSuffix(rest, "/") {
			return errors.New("sqlite:// needs a file path, e.g. sqlite:///var/lib/hubjobs/hubjobs.db")
		}
	case scheme == "postgres" || scheme == "postgresql":
		if _, err := url.Parse(dsn); err != nil {
			return errors.New("not a valid postgres:// URL")
		}
	default:
		return fmt.Errorf("unknown database scheme %q: want sqlite or postgres", scheme)
	}
	return nil
}

func (d *decoder) validateLog(l docLog) Log {
	if l.Format != LogJSON && l.Format != LogText {
		d.problem("log.format", "%q: want json or text", l.Format)
	}
	var level slog.Level
	// UnmarshalText also takes offsets such as "info+2"; the documented
	// values are the four names.
	if err := level.UnmarshalText([]byte(l.Level)); err != nil || strings.ContainsAny(l.Level, "+-") {
		d.problem("log.level", "%q: want debug, info, warn or error", l.Level)
	}
	return Log{Format: l.Format, Level: level}
}

func (d *decoder) validateServer(s Server) {
	positive := []struct {
		key   string
		value int64
	}{
		{"server.read_header_timeout", int64(s.ReadHeaderTimeout)},
		{"server.read_timeout", int64(s.ReadTimeout)},
		{"server.write_timeout", int64(s.WriteTimeout)},
		{"server.idle_timeout", int64(s.IdleTimeout)},
		{"server.shutdown_timeout", int64(s.ShutdownTimeout)},
	}
	for _, p := range positive {
		if p.value <= 0 {
			d.problem(p.key, "must be positive")
		}
	}
	if s.DrainDelay < 0 {
		d.problem("server.drain_delay", "must not be negative")
	}
	d.atLeast("server.max_header_bytes", s.MaxHeaderBytes, 1024)
}
