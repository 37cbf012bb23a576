package auth

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

func TestRoleMapping(t *testing.T) {
	roleMap := map[Role][]string{
		RoleViewer: {"Jobs.Read"}, RoleOperator: {"Jobs.Cancel"}, RoleAuditor: {"Audit.Read"}, RoleAdmin: {"Jobs.Admin"},
	}
	tests := []struct {
		name       string
		claims     string
		path       string
		wantValues []string
		wantRoles  []Role
	}{
		{"Array", `{"roles":["Jobs.Read","Jobs.Cancel"]}`, "roles", []string{"Jobs.Read", "Jobs.Cancel"}, []Role{RoleViewer, RoleOperator}},
		{"SingleString", `{"roles":"Audit.Read"}`, "roles", []string{"Audit.Read"}, []Role{RoleAuditor}},
		{"MissingClaim", `{"name":"x"}`, "roles", nil, nil},
		{"EmptyArray", `{"roles":[]}`, "roles", []string{}, nil},
		{"UnknownValues", `{"roles":["Fleet.Manager","Jobs.ReadAll"]}`, "roles", []string{"Fleet.Manager", "Jobs.ReadAll"}, nil},
		{"CaseVariantsGrantNothing", `{"roles":["jobs.read","JOBS.CANCEL","Jobs.admin"]}`, "roles", []string{"jobs.read", "JOBS.CANCEL", "Jobs.admin"}, nil},
		{"SurroundingSpaceGrantsNothing", `{"roles":[" Jobs.Read","Jobs.Read "]}`, "roles", []string{" Jobs.Read", "Jobs.Read "}, nil},
		{"NonStringMembersIgnored", `{"roles":[1,true,null,{"a":"Jobs.Read"},["Jobs.Read"],"Jobs.Admin"]}`, "roles", []string{"Jobs.Admin"}, []Role{RoleAdmin}},
		{"DuplicatesCollapsed", `{"roles":["Jobs.Read","Jobs.Read"]}`, "roles", []string{"Jobs.Read"}, []Role{RoleViewer}},
		{"NumberClaim", `{"roles":42}`, "roles", nil, nil},
		{"ObjectClaim", `{"roles":{"Jobs.Read":true}}`, "roles", nil, nil},
		{"DottedPath", `{"realm_access":{"roles":["Jobs.Cancel"]}}`, "realm_access.roles", []string{"Jobs.Cancel"}, []Role{RoleOperator}},
		{"DeepDottedPath", `{"resource_access":{"hubjobs":{"roles":"Jobs.Admin"}}}`, "resource_access.hubjobs.roles", []string{"Jobs.Admin"}, []Role{RoleAdmin}},
		{"DottedPathThroughNonObject", `{"realm_access":["roles"]}`, "realm_access.roles", nil, nil},
		{"ClaimNameWithDots", `{"https://example.com/roles":["Jobs.Read"]}`, "https://example.com/roles", []string{"Jobs.Read"}, []Role{RoleViewer}},
		// Entra group overage: no groups claim, only a pointer to Graph. No
		// values means no role (deny), never "unrestricted" (docs/security.md case 12).
		{"GroupsOverageGrantsNothing", `{"_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}}`, "groups", nil, nil},
		{"GroupsClaim", `{"groups":["Jobs.Read"],"roles":["Jobs.Admin"]}`, "groups", []string{"Jobs.Read"}, []Role{RoleViewer}},
		{"AllRoles", `{"roles":["Jobs.Admin","Audit.Read","Jobs.Cancel","Jobs.Read"]}`, "roles", []string{"Jobs.Admin", "Audit.Read", "Jobs.Cancel", "Jobs.Read"}, []Role{RoleViewer, RoleOperator, RoleAuditor, RoleAdmin}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var claims map[string]any
			if err := json.Unmarshal([]byte(tc.claims), &claims); err != nil {
				t.Fatal(err)
			}
			values := claimValues(claims, tc.path)
			if !slices.Equal(values, tc.wantValues) {
				t.Errorf("values = %q, want %q", values, tc.wantValues)
			}
			if got := mapRoles(values, roleMap); !slices.Equal(got, tc.wantRoles) {
				t.Errorf("roles = %v, want %v", got, tc.wantRoles)
			}
		})
	}
}

func TestConfig_Validation(t *testing.T) {
	clock := newTestClock()
	valid := testConfig("https://idp.example.com", "https://jobs.example.com", clock, &eventLog{}, NewMemoryRevocations(nil), &testkit.Buffer{})
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"NoIssuer", func(c *Config) { c.Issuer = "" }, "Issuer is required"},
		{"NoClient", func(c *Config) { c.ClientID = "" }, "ClientID is required"},
		{"NoKeys", func(c *Config) { c.SessionKeys = nil }, "SessionKeys needs"},
		{"ShortKey", func(c *Config) { c.SessionKeys = [][]byte{make([]byte, 31)} }, "SessionKeys[0] is 31 bytes"},
		{"NoRevocations", func(c *Config) { c.Revocations = nil }, "Revocations is required"},
		{"NoEvents", func(c *Config) { c.Events = nil }, "Events is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.change(&c)
			_, err := c.withDefaults()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	c, err := valid.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.RolesClaim != "roles" || !slices.Contains(c.Scopes, "openid") || c.IdleTimeout != DefaultIdleTimeout || c.AbsoluteTimeout != DefaultAbsoluteTimeout {
		t.Errorf("defaults not applied: %+v", c)
	}
	withoutOpenID := valid
	withoutOpenID.Scopes = []string{"profile", "groups"}
	if c, _ := withoutOpenID.withDefaults(); c.Scopes[0] != "openid" {
		t.Errorf("openid scope not added: %v", c.Scopes)
	}
}

// A role map built in code (not through package config) cannot grant more
// than the known roles: an unknown role and a blank value grant nothing.
func TestRoleMapGrantsOnlyKnownRoles(t *testing.T) {
	roleMap := map[Role][]string{"root": {"Everything"}, RoleViewer: {""}, RoleAuthor: {"Jobs.Write"}}
	tests := []struct {
		values []string
		want   []Role
	}{
		{[]string{"Everything"}, nil},
		{[]string{""}, nil},
		{[]string{"Jobs.Write", "Everything"}, []Role{RoleAuthor}},
	}
	for _, tc := range tests {
		if got := mapRoles(tc.values, roleMap); !slices.Equal(got, tc.want) {
			t.Errorf("mapRoles(%q) = %v, want %v", tc.values, got, tc.want)
		}
	}
}
