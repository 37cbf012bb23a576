package config

import (
	"time"

	"github.com/hubjobs/hubjobs/notify"
)

// document is the file as written: every YAML key, with the plain types the
// walker in load.go fills. validate.go turns it into a Config. Audit, Server
// and Rollouts need no conversion, so the document uses the typed structs.
type document struct {
	Listen         string     `yaml:"listen"`
	PublicURL      string     `yaml:"public_url"`
	TrustedProxies []string   `yaml:"trusted_proxies"`
	Session        docSession `yaml:"session"`
	OIDC           docOIDC    `yaml:"oidc"`
	Hubs           []docHub   `yaml:"hubs"`
	Audit          Audit      `yaml:"audit"`
	Log            docLog     `yaml:"log"`
	Server         Server     `yaml:"server"`
	Rollouts       Rollouts   `yaml:"rollouts"`
	Notify         docNotify  `yaml:"notify"`
}

type docSession struct {
	Keys            []string      `yaml:"keys"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
}

type docOIDC struct {
	Issuer       string   `yaml:"issuer"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
	RolesClaim   string   `yaml:"roles_claim"`
	Roles        docRoles `yaml:"roles"`
}

// docRoles maps each portal role to the claim values that grant it. It is a
// struct rather than a map so that an unknown role name is an unknown key.
type docRoles struct {
	Viewer   []string `yaml:"viewer"`
	Operator []string `yaml:"operator"`
	Author   []string `yaml:"author"`
	Approver []string `yaml:"approver"`
	Auditor  []string `yaml:"auditor"`
	Admin    []string `yaml:"admin"`
}

type docHub struct {
	Name             string   `yaml:"name"`
	ConnectionString string   `yaml:"connection_string"`
	Host             string   `yaml:"host"`
	Credential       string   `yaml:"credential"`
	Endpoint         string   `yaml:"endpoint"`
	Operators        []string `yaml:"operators"`
	Authors          []string `yaml:"authors"`
	JobsOpsPerMinute int      `yaml:"jobs_ops_per_minute"`
	QueriesPerMinute int      `yaml:"queries_per_minute"`
	MaxActiveJobs    int      `yaml:"max_active_jobs"`
}

type docLog struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

type docNotify struct {
	Webhooks []docWebhook `yaml:"webhooks"`
}

type docWebhook struct {
	Name   string   `yaml:"name"`
	URL    string   `yaml:"url"`
	Secret string   `yaml:"secret"`
	Events []string `yaml:"events"`
	Format string   `yaml:"format"`
}

// credentialAzure selects azidentity's DefaultAzureCredential for a hub.
const credentialAzure = "azure"

// defaultDocument holds every default; loading overwrites what the file or
// the environment sets. The write timeout leaves room for a hub call budget
// of about 25 s plus rendering.
func defaultDocument() document {
	return document{
		Listen:  "127.0.0.1:8080",
		Session: docSession{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 8 * time.Hour},
		OIDC: docOIDC{
			Scopes:     []string{"openid", "profile", "email"},
			RolesClaim: "roles",
			Roles: docRoles{
				Viewer:   []string{"Jobs.Read"},
				Operator: []string{"Jobs.Cancel"},
				Author:   []string{"Jobs.Write"},
				Approver: []string{"Jobs.Approve"},
				Auditor:  []string{"Audit.Read"},
				Admin:    []string{"Jobs.Admin"},
			},
		},
		Audit: Audit{Database: DefaultDatabase},
		Log:   docLog{Format: LogJSON, Level: "info"},
		Server: Server{
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      45 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    16 << 10,
			DrainDelay:        5 * time.Second,
			ShutdownTimeout:   20 * time.Second,
		},
		Rollouts: Rollouts{
			Enabled:             true,
			PollInterval:        15 * time.Second,
			MaxShareOfBudget:    0.5,
			ApprovalOverDevices: 1000,
		},
	}
}

// DefaultDatabase is audit.database when the file does not set it.
const DefaultDatabase = "sqlite:///var/lib/hubjobs/hubjobs.db"

// setDefaults fills a list entry's defaults before the entry is decoded
// (see decodeList).
func (h *docHub) setDefaults() {
	h.JobsOpsPerMinute = DefaultJobsOpsPerMinute
	h.QueriesPerMinute = DefaultQueriesPerMinute
	h.MaxActiveJobs = DefaultMaxActiveJobs
}

func (w *docWebhook) setDefaults() { w.Format = string(notify.FormatJSON) }
