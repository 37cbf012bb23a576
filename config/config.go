// Package config reads hubjobs' YAML configuration and hands the wiring
// validated, typed values, so that the packages it configures (auth, web,
// hub) need not check them again. docs/config.md is the user's reference.
//
// Loading works in three layers, and every problem of all three is reported
// at once:
//
//  1. load.go: the YAML document is parsed into a node tree and walked
//     against the document's struct, so every unknown key is reported with
//     its full dotted path and line ("oidc.client_secert: unknown key …").
//     Scalars are converted by the walker itself, not by YAML's implicit
//     typing, so a secret that happens to read "null", "yes" or "0x10" stays
//     the string it is. In file values ${NAME} expands from the environment
//     and $$ is a literal $; an unset or empty variable is an error naming
//     the key, never a silent empty secret. Expansion happens per scalar,
//     after parsing, so a variable's value can never change the structure.
//  2. env.go: every key can be overridden by HUBJOBS_<UPPER_SNAKE_PATH>; an
//     entry of a named list (hubs, notify.webhooks) by its name.
//  3. validate.go: values are checked across keys and turned into the typed
//     Config: decoded session keys, parsed connection strings, proxy
//     prefixes, the role map, webhook URLs and so on.
//
// Every problem is one line "config: <key>: <problem>" of a single *Error.
// Secret values (session keys, client secret, connection strings, the
// database DSN, webhook URLs and secrets) are never echoed in a message: a
// message names the key, never the value.
package config

import (
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/notify"
)

// Config is a validated configuration. Every value in it has passed the
// checks in validate.go; the comments say what each guarantees.
type Config struct {
	Listen         string         // host:port
	PublicURL      string         // an http(s) origin: scheme://host[:port], lower-case host, no path or trailing slash
	TrustedProxies []netip.Prefix // masked; a single address is a /32 or /128
	Session        Session
	OIDC           OIDC
	Hubs           []Hub // at least one; names unique and hub.ValidHubName
	Audit          Audit
	Log            Log
	Server         Server
	Rollouts       Rollouts
	Notify         Notify
}

// Session is how long a sign-in lasts and the keys its cookie is sealed with.
type Session struct {
	Keys            [][]byte      // decoded, at least one, each ≥ MinSessionKeyBytes; the first signs, all verify
	IdleTimeout     time.Duration // > 0 and ≤ AbsoluteTimeout
	AbsoluteTimeout time.Duration // > 0
}

// MinSessionKeyBytes is the least random key material a session key needs.
const MinSessionKeyBytes = 32

// OIDC is the identity provider and how its claim values map to roles.
type OIDC struct {
	Issuer       string // absolute https URL (http on loopback), no query or fragment
	ClientID     string // non-empty
	ClientSecret string // non-empty
	Scopes       []string
	RolesClaim   string                 // a claim name or dotted path
	Roles        map[auth.Role][]string // every portal role, each with its non-blank claim values ([] grants it to nobody)
}

// Hub is one configured IoT hub.
type Hub struct {
	Name string // hub.ValidHubName, unique
	// ConnectionString is set for SAS authentication and nil for Entra ID
	// (azidentity's DefaultAzureCredential).
	ConnectionString *hub.ConnectionString
	Host             string   // the hub's host name: the connection string's HostName, or the host key
	Endpoint         string   // optional base-URL override (simulator, tests); "" when unset
	Operators        []string // optional: only these claim values may cancel here (none: every operator)
	Authors          []string // optional: only these claim values may create jobs here (none: every author)
	JobsOpsPerMinute int      // ≥ 1
	QueriesPerMinute int      // ≥ 1
	MaxActiveJobs    int      // ≥ 1
}

// Per-hub defaults. MaxActiveJobs defaults to the limit of the smallest
// tiers (Free and S1 allow one unfinished job): a hub of a bigger tier only
// runs jobs one at a time until configured with its real limit, whereas a
// guess above the real limit would meet the hub's 429s.
const (
	DefaultJobsOpsPerMinute = 100
	DefaultQueriesPerMinute = 20 // S1/S2: 20 per minute per unit
	DefaultMaxActiveJobs    = 1
)

// Audit is where the audit trail lives.
type Audit struct {
	// Database is sqlite://PATH or postgres://…; its shape is checked here,
	// the rest (the directory exists, the server answers) by audit.Open.
	Database string `yaml:"database"`
}

// Log is the process log's shape.
type Log struct {
	Format string     // LogJSON or LogText
	Level  slog.Level // debug, info, warn or error
}

// Log formats.
const (
	LogJSON = "json"
	LogText = "text"
)

// Server holds the HTTP server's limits and the shutdown sequence (SIGTERM →
// readyz 503 → DrainDelay → Shutdown bounded by ShutdownTimeout). An
// orchestrator's grace period must exceed DrainDelay + ShutdownTimeout.
type Server struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"` // > 0
	ReadTimeout       time.Duration `yaml:"read_timeout"`        // > 0
	WriteTimeout      time.Duration `yaml:"write_timeout"`       // > 0
	IdleTimeout       time.Duration `yaml:"idle_timeout"`        // > 0
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`    // ≥ 1024
	DrainDelay        time.Duration `yaml:"drain_delay"`         // ≥ 0
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`    // > 0
}

// Rollouts configures the staged-rollout engine that runs inside serve.
type Rollouts struct {
	Enabled             bool          `yaml:"enabled"`
	PollInterval        time.Duration `yaml:"poll_interval"`         // ≥ 1s: how often a running wave's jobs are read
	MaxShareOfBudget    float64       `yaml:"max_share_of_budget"`   // in (0, 1]: the most of a hub's budgets the engine spends
	ApprovalOverDevices int           `yaml:"approval_over_devices"` // ≥ 0: a wave above this size needs an approver; 0: never
}

// Notify lists the webhooks that receive events.
type Notify struct {
	Webhooks []Webhook // names unique
}

// Webhook is one receiver of event notifications.
type Webhook struct {
	Name   string        // unique; 1-64 of a-z, 0-9 and -
	URL    *url.URL      // absolute http or https; may carry a token in its path, so treat it as a secret too
	Secret Secret        // HMAC-SHA256 key, non-empty
	Events []string      // each one notify.Known accepts, no repeats
	Format notify.Format // notify.FormatJSON (the default) or notify.FormatSlack
}

// Secret is key material that must never reach a log, a page or an error:
// every way of printing it prints a placeholder.
type Secret []byte

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Error is every problem a configuration has, one per line.
type Error struct {
	Problems []Problem
}

// Problem is one configuration problem. Key is the dotted path of the key it
// concerns ("notify.webhooks[0].secret"); "" for the document as a whole
// (a file that cannot be read or parsed).
type Problem struct {
	Key, Message string
}

func (p Problem) String() string {
	if p.Key == "" {
		return "config: " + p.Message
	}
	return "config: " + p.Key + ": " + p.Message
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
