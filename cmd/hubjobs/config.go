package main

// The serve configuration (design.md "Config file").
//
// Loading works in three layers, all reported at once:
//
//  1. The YAML document is parsed into a node tree (go.yaml.in/yaml/v3) and
//     walked against the config struct, so every unknown key is reported with
//     its full dotted path and line ("oidc.client_secert: unknown key …");
//     this is yaml.Decoder.KnownFields done by hand, because its messages
//     ("field x not found in type main.oidcConfig") name neither the key's
//     path nor the keys that would have been right.
//     Scalars are converted by the walker itself, not by YAML's implicit
//     typing, so a secret that happens to read "null", "yes" or "0x10" stays
//     the string it is.
//  2. In file values, ${NAME} expands from the environment and $$ is a literal
//     $ (a $ followed by anything else is kept as is). An unset or empty
//     variable is an error naming the key, never a silent empty secret.
//     Expansion happens per scalar, after parsing, so a variable's value can
//     never change the document's structure.
//  3. Every key can be overridden by HUBJOBS_<UPPER_SNAKE_PATH>, e.g.
//     HUBJOBS_OIDC_CLIENT_SECRET or HUBJOBS_SESSION_IDLE_TIMEOUT; a hub's keys by
//     its name: HUBJOBS_HUBS_<NAME>_<KEY> with '-' in the name as '_'
//     (HUBJOBS_HUBS_EU_WEST_CONNECTION_STRING). List-valued keys take a
//     comma-separated list (HUBJOBS_SESSION_KEYS=k1,k2). Override values are
//     taken literally (no ${} expansion); an empty variable counts as unset.
//     Hubs themselves are declared in the file; the environment cannot add one.
//
// Then validate checks the values and derives the typed forms the wiring
// needs. Every problem becomes one line "config: <key>: <problem>" of a single
// *usageError (exit code 2). Secret values (session keys, client secret,
// connection strings, the database DSN) are never echoed in a message.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
)

// config is the parsed, validated configuration. Exported-style fields are
// YAML keys; the unexported ones are derived by validate.
type config struct {
	Listen         string        `yaml:"listen"`
	PublicURL      string        `yaml:"public_url"`
	TrustedProxies []string      `yaml:"trusted_proxies"`
	Session        sessionConfig `yaml:"session"`
	OIDC           oidcConfig    `yaml:"oidc"`
	Hubs           []hubConfig   `yaml:"hubs"`
	Audit          auditConfig   `yaml:"audit"`
	Log            logConfig     `yaml:"log"`
	Server         serverConfig  `yaml:"server"`

	trustedProxies []netip.Prefix
}

type sessionConfig struct {
	Keys            []string      `yaml:"keys"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`

	keys [][]byte // decoded Keys
}

type oidcConfig struct {
	Issuer       string      `yaml:"issuer"`
	ClientID     string      `yaml:"client_id"`
	ClientSecret string      `yaml:"client_secret"`
	Scopes       []string    `yaml:"scopes"`
	RolesClaim   string      `yaml:"roles_claim"`
	Roles        rolesConfig `yaml:"roles"`
}

// rolesConfig maps each portal role to the claim values that grant it. It is
// a struct rather than a map so that an unknown role name is an unknown key.
// Each role defaults to its Entra app role; `[]` grants it to nobody.
type rolesConfig struct {
	Viewer   []string `yaml:"viewer"`
	Operator []string `yaml:"operator"`
	Auditor  []string `yaml:"auditor"`
	Admin    []string `yaml:"admin"`
}

// roleMap is the form auth.Config wants.
func (r rolesConfig) roleMap() map[auth.Role][]string {
	return map[auth.Role][]string{
		auth.RoleViewer:   r.Viewer,
		auth.RoleOperator: r.Operator,
		auth.RoleAuditor:  r.Auditor,
		auth.RoleAdmin:    r.Admin,
	}
}

type hubConfig struct {
	Name             string   `yaml:"name"`
	ConnectionString string   `yaml:"connection_string"`
	Host             string   `yaml:"host"`
	Credential       string   `yaml:"credential"`
	Endpoint         string   `yaml:"endpoint"`
	Operators        []string `yaml:"operators"`
	JobsOpsPerMinute int      `yaml:"jobs_ops_per_minute"`

	connString hub.ConnectionString // parsed ConnectionString, when set
}

type auditConfig struct {
	Database string `yaml:"database"`
}

// logConfig is an addition to design.md: the process log's shape.
type logConfig struct {
	Format string `yaml:"format"` // json (default) or text
	Level  string `yaml:"level"`  // debug, info (default), warn, error
}

// serverConfig is an addition to design.md: HTTP server limits and the
// shutdown sequence (SIGTERM → readyz 503 → DrainDelay → Shutdown bounded by
// ShutdownTimeout). Kubernetes' terminationGracePeriodSeconds must exceed
// DrainDelay + ShutdownTimeout.
type serverConfig struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	DrainDelay        time.Duration `yaml:"drain_delay"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
}

// Well-known values shared by the defaults, the demo and the docs.
const (
	defaultJobsOpsPerMinute = 100
	envPrefix               = "HUBJOBS"
	credentialAzure         = "azure" // azidentity DefaultAzureCredential
)

// defaultConfig holds every default; loading overwrites what the file or the
// environment sets. The write timeout leaves room for a hub call budget of
// about 25 s (security.md 5.2) plus rendering.
func defaultConfig() *config {
	return &config{
		Listen:  "127.0.0.1:8080",
		Session: sessionConfig{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 8 * time.Hour},
		OIDC: oidcConfig{
			Scopes:     []string{"openid", "profile", "email"},
			RolesClaim: "roles",
			Roles: rolesConfig{
				Viewer:   []string{"Jobs.Read"},
				Operator: []string{"Jobs.Cancel"},
				Auditor:  []string{"Audit.Read"},
				Admin:    []string{"Jobs.Admin"},
			},
		},
		Audit: auditConfig{Database: "sqlite:///var/lib/hubjobs/hubjobs.db"},
		Log:   logConfig{Format: "json", Level: "info"},
		Server: serverConfig{
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      45 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    16 << 10,
			DrainDelay:        5 * time.Second,
			ShutdownTimeout:   20 * time.Second,
		},
	}
}

// hubDefaults fills the per-hub defaults before a hub entry is decoded.
func hubDefaults() hubConfig { return hubConfig{JobsOpsPerMinute: defaultJobsOpsPerMinute} }

// loadConfig reads path, expands ${VAR}, applies HUBJOBS_* overrides and
// validates; problems come back as one *usageError naming every bad key.
func loadConfig(path string, getenv func(string) string) (*config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("config: %v", err)}
	}
	return parseConfig(data, getenv)
}

// parseConfig is loadConfig without the file system.
func parseConfig(data []byte, getenv func(string) string) (*config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &usageError{fmt.Sprintf("config: not valid YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	var root *yaml.Node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	cfg := defaultConfig()
	d := &decoder{getenv: getenv}
	d.decodeStruct(root, reflect.ValueOf(cfg).Elem(), "", envPrefix)
	d.validate(cfg)
	if err := d.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validateConfig checks a configuration built in code (the demo) exactly as
// one read from a file, and derives its typed fields.
func validateConfig(cfg *config) error {
	d := &decoder{}
	d.validate(cfg)
	return d.err()
}

// decoder walks the YAML node tree and the environment into the config
// struct, collecting problems instead of stopping at the first.
type decoder struct {
	getenv   func(string) string
	problems []string
	keys     []string // the key of each problem
}

// err is every problem found, one per line, or nil.
func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	return &usageError{strings.Join(d.problems, "\n")}
}

// problem records one problem with key, unless key (or a key inside it)
// already has one: a connection string that failed to expand is not also
// reported as missing.
func (d *decoder) problem(key, format string, args ...any) {
	for _, k := range d.keys {
		if k == key || strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[") {
			return
		}
	}
	d.keys = append(d.keys, key)
	d.problems = append(d.problems, fmt.Sprintf("config: %s: %s", key, fmt.Sprintf(format, args...)))
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	hubNameRE    = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
)

// yamlKey is a struct field's key, or "" for fields that are not keys.
func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return key
}

// decodeStruct fills v from a mapping node (nil when the key is absent) and
// from the environment variables under env.
func (d *decoder) decodeStruct(node *yaml.Node, v reflect.Value, path, env string) {
	node = resolveAlias(node)
	t := v.Type()
	var keys []string
	index := map[string]int{}
	for i := range t.NumField() {
		if key := yamlKey(t.Field(i)); key != "" {
			keys = append(keys, key)
			index[key] = i
		}
	}
	given := map[string]*yaml.Node{}
	switch {
	case isNull(node):
	case node.Kind != yaml.MappingNode:
		d.problem(displayPath(path), "must be a mapping of keys (line %d)", node.Line)
	default:
		for i := 0; i+1 < len(node.Content); i += 2 {
			k := node.Content[i]
			if _, ok := index[k.Value]; !ok {
				d.problem(joinPath(path, k.Value), "unknown key (line %d); known keys here: %s", k.Line, strings.Join(keys, ", "))
				continue
			}
			given[k.Value] = node.Content[i+1]
		}
	}
	for _, key := range keys {
		d.decodeValue(given[key], v.Field(index[key]), joinPath(path, key), env+"_"+strings.ToUpper(key))
	}
}

// decodeValue fills one field: the environment wins over the file.
func (d *decoder) decodeValue(node *yaml.Node, v reflect.Value, path, env string) {
	node = resolveAlias(node)
	switch {
	case v.Kind() == reflect.Struct && v.Type() != durationType:
		d.decodeStruct(node, v, path, env)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		d.decodeHubs(node, v, path, env)
	case v.Kind() == reflect.Slice:
		if text := d.getenv(env); text != "" {
			v.Set(reflect.ValueOf(splitList(text)))
			return
		}
		d.decodeList(node, v, path)
	default:
		if text := d.getenv(env); text != "" {
			if err := setScalar(v, text); err != nil {
				d.problem(path, "%v (from %s)", err, env)
			}
			return
		}
		if isNull(node) {
			return
		}
		if node.Kind != yaml.ScalarNode {
			d.problem(path, "must be a single value (line %d)", node.Line)
			return
		}
		text, err := expand(node.Value, d.getenv)
		if err != nil {
			d.problem(path, "%v (line %d)", err, node.Line)
			return
		}
		if err := setScalar(v, text); err != nil {
			d.problem(path, "%v (line %d)", err, node.Line)
		}
	}
}

// decodeList fills a []string from a sequence of scalars.
func (d *decoder) decodeList(node *yaml.Node, v reflect.Value, path string) {
	if isNull(node) {
		return
	}
	if node.Kind != yaml.SequenceNode {
		d.problem(path, "must be a list (line %d)", node.Line)
		return
	}
	list := []string{}
	for i, item := range node.Content {
		item = resolveAlias(item)
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		if item.Kind != yaml.ScalarNode {
			d.problem(itemPath, "must be a single value (line %d)", item.Line)
			continue
		}
		text, err := expand(item.Value, d.getenv)
		if err != nil {
			d.problem(itemPath, "%v (line %d)", err, item.Line)
			continue
		}
		list = append(list, text)
	}
	v.Set(reflect.ValueOf(list))
}

// decodeHubs fills the hubs list. Each hub's environment prefix is derived
// from its name in the file, so HUBJOBS_HUBS_PROD_… addresses the hub named
// prod wherever it sits in the list.
func (d *decoder) decodeHubs(node *yaml.Node, v reflect.Value, path, env string) {
	if isNull(node) {
		return
	}
	if node.Kind != yaml.SequenceNode {
		d.problem(path, "must be a list (line %d)", node.Line)
		return
	}
	hubs := reflect.MakeSlice(v.Type(), len(node.Content), len(node.Content))
	for i, item := range node.Content {
		hubs.Index(i).Set(reflect.ValueOf(hubDefaults()))
		hubEnv := "" // no overrides for a hub whose name is unusable
		if name := hubNameOf(item, d.getenv); hubNameRE.MatchString(name) {
			hubEnv = env + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		}
		d.decodeStruct(item, hubs.Index(i), fmt.Sprintf("%s[%d]", path, i), hubEnv)
	}
	v.Set(hubs)
}

// hubNameOf peeks at a hub entry's name; problems with it are reported when
// the entry itself is decoded.
func hubNameOf(item *yaml.Node, getenv func(string) string) string {
	item = resolveAlias(item)
	if item == nil || item.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(item.Content); i += 2 {
		if item.Content[i].Value == "name" {
			name, _ := expand(resolveAlias(item.Content[i+1]).Value, getenv)
			return name
		}
	}
	return ""
}

// setScalar converts text to v's type.
func setScalar(v reflect.Value, text string) error {
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("%q is not a duration (use e.g. 30s, 5m, 8h)", text)
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(text)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", text)
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.String:
		v.SetString(text)
	default:
		return fmt.Errorf("unsupported config field type %s", v.Type()) // a programming error
	}
	return nil
}

// splitList reads a comma-separated environment value.
func splitList(text string) []string {
	var list []string
	for item := range strings.SplitSeq(text, ",") {
		if item = strings.TrimSpace(item); item != "" {
			list = append(list, item)
		}
	}
	return list
}

var errBadReference = errors.New("bad ${…} reference: want ${NAME} with NAME of letters, digits and _ (write $$ for a literal $)")

// expand replaces ${NAME} with getenv(NAME) and $$ with $.
func expand(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", errBadReference
			}
			name := s[i+2 : i+end]
			if !envNameRE.MatchString(name) {
				return "", errBadReference
			}
			value := getenv(name)
			if value == "" {
				return "", fmt.Errorf("${%s} is not set", name)
			}
			b.WriteString(value)
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// isNull reports an absent key or an explicit null (`key:` or `key: ~`).
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func displayPath(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}

// validate checks values across keys and derives the typed forms.
func (d *decoder) validate(c *config) {
	if err := checkListen(c.Listen); err != nil {
		d.problem("listen", "%v", err)
	}
	if c.PublicURL == "" {
		d.problem("public_url", "required: the URL users open, e.g. https://jobs.example.com")
	} else if err := checkURL(c.PublicURL, true); err != nil {
		d.problem("public_url", "%v", err)
	} else {
		c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	}
	for i, p := range c.TrustedProxies {
		prefix, err := parsePrefix(p)
		if err != nil {
			d.problem(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not a CIDR like 10.0.0.0/8 or an IP address", p)
			continue
		}
		c.trustedProxies = append(c.trustedProxies, prefix)
	}
	d.validateSession(&c.Session)
	d.validateOIDC(&c.OIDC)
	d.validateHubs(c.Hubs)
	if err := checkDatabase(c.Audit.Database); err != nil {
		d.problem("audit.database", "%v", err)
	}
	if !slices.Contains([]string{"json", "text"}, c.Log.Format) {
		d.problem("log.format", "%q: want json or text", c.Log.Format)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		d.problem("log.level", "%v", err)
	}
	d.validateServer(&c.Server)
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

const minSessionKeyBytes = 32

func (d *decoder) validateSession(s *sessionConfig) {
	if len(s.Keys) == 0 {
		d.problem("session.keys", "required: at least one key of %d+ random bytes, standard base64 (e.g. `head -c32 /dev/urandom | base64`)", minSessionKeyBytes)
	}
	for i, k := range s.Keys {
		key := fmt.Sprintf("session.keys[%d]", i)
		raw, err := base64.StdEncoding.DecodeString(k)
		switch {
		case err != nil:
			d.problem(key, "not standard base64")
		case len(raw) < minSessionKeyBytes:
			d.problem(key, "decodes to %d bytes; need at least %d", len(raw), minSessionKeyBytes)
		default:
			s.keys = append(s.keys, raw)
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
}

func (d *decoder) validateOIDC(o *oidcConfig) {
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
	for role, values := range o.Roles.roleMap() {
		for i, v := range values {
			if strings.TrimSpace(v) == "" {
				d.problem(fmt.Sprintf("oidc.roles.%s[%d]", role, i), "empty claim value")
			}
		}
	}
}

func (d *decoder) validateHubs(hubs []hubConfig) {
	if len(hubs) == 0 {
		d.problem("hubs", "required: at least one hub")
	}
	seen := map[string]int{}
	for i := range hubs {
		h := &hubs[i]
		key := func(k string) string { return fmt.Sprintf("hubs[%d].%s", i, k) }
		switch first, dup := seen[h.Name]; {
		case !hubNameRE.MatchString(h.Name):
			d.problem(key("name"), "%q must be 1-32 characters of a-z, 0-9 and -", h.Name)
		case dup:
			d.problem(key("name"), "%q is already the name of hubs[%d]", h.Name, first)
		default:
			seen[h.Name] = i
		}
		sas, entra := h.ConnectionString != "", h.Host != "" || h.Credential != ""
		switch {
		case sas && entra:
			d.problem(fmt.Sprintf("hubs[%d]", i), "set either connection_string (SAS) or host + credential (Entra ID), not both")
		case !sas && !entra:
			d.problem(fmt.Sprintf("hubs[%d]", i), "needs connection_string (SAS) or host + credential (Entra ID)")
		case sas:
			cs, err := hub.ParseConnectionString(h.ConnectionString)
			if err != nil {
				d.problem(key("connection_string"), "not a valid IoT Hub connection string (want HostName=…;SharedAccessKeyName=…;SharedAccessKey=…)")
			}
			h.connString = cs
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
		for j, op := range h.Operators {
			if strings.TrimSpace(op) == "" {
				d.problem(fmt.Sprintf("hubs[%d].operators[%d]", i, j), "empty claim value")
			}
		}
		if h.JobsOpsPerMinute < 1 {
			d.problem(key("jobs_ops_per_minute"), "must be at least 1")
		}
	}
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$`)

// checkDatabase checks the DSN's shape; audit.Open does the rest.
func checkDatabase(dsn string) error {
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

func (d *decoder) validateServer(s *serverConfig) {
	positive := []struct {
		key string
		d   time.Duration
	}{
		{"server.read_header_timeout", s.ReadHeaderTimeout},
		{"server.read_timeout", s.ReadTimeout},
		{"server.write_timeout", s.WriteTimeout},
		{"server.idle_timeout", s.IdleTimeout},
		{"server.shutdown_timeout", s.ShutdownTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			d.problem(p.key, "must be positive")
		}
	}
	if s.DrainDelay < 0 {
		d.problem("server.drain_delay", "must not be negative")
	}
	if s.MaxHeaderBytes < 1024 {
		d.problem("server.max_header_bytes", "must be at least 1024")
	}
}
