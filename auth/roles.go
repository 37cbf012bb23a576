package auth

import (
	"slices"
	"strings"
	"time"
)

// Role is a portal role.
type Role string

const (
	RoleViewer   Role = "viewer"   // read jobs and rollouts
	RoleOperator Role = "operator" // viewer + cancel jobs + halt rollouts
	RoleAuthor   Role = "author"   // viewer + create jobs and rollouts
	RoleApprover Role = "approver" // viewer + approve a rollout's gated wave (never their own)
	RoleAuditor  Role = "auditor"  // read the audit trail
	RoleAdmin    Role = "admin"    // all
)

// knownRoles lists every portal role in a stable order (used for
// validation, for the "no access" page and for compact storage). Sessions
// store role names, not positions, so the order can grow.
var knownRoles = []Role{RoleViewer, RoleOperator, RoleAuthor, RoleApprover, RoleAuditor, RoleAdmin}

// User is the signed-in person, rebuilt from the session cookie on each request.
type User struct {
	Issuer, Subject string
	Name, Email     string
	Roles           []Role   // portal roles after mapping, as of sign-in
	ClaimValues     []string // raw values of roles_claim (hub-level operator lists match these)
	SessionID       string   // random id; revocation key; never logged raw
	IssuedAt        time.Time
}

// Can reports whether the user holds role r: admin implies all; operator,
// author and approver each imply viewer (acting on jobs means seeing them).
// Rules that depend on the object, such as never approving one's own
// rollout, belong to the code that knows the object.
func (u *User) Can(r Role) bool {
	if u == nil {
		return false
	}
	for _, held := range u.Roles {
		switch {
		case held == r, held == RoleAdmin:
			return true
		case r == RoleViewer && (held == RoleOperator || held == RoleAuthor || held == RoleApprover):
			return true
		}
	}
	return false
}

// claimValues reads the roles claim at a dotted path from decoded ID-token
// claims. A claim whose own name contains dots (for example a URL-named
// custom claim) is matched whole before the path is walked. A string claim
// is one value; an array yields its string members; anything else yields
// nothing, so a malformed claim grants nothing.
func claimValues(claims map[string]any, path string) []string {
	v, ok := lookupClaim(claims, path)
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, item := range v {
			if s, ok := item.(string); ok && s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func lookupClaim(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	head, rest, found := strings.Cut(path, ".")
	if !found {
		return nil, false
	}
	child, ok := claims[head].(map[string]any)
	if !ok {
		return nil, false
	}
	return lookupClaim(child, rest)
}

// mapRoles turns claim values into portal roles through the configured map.
// Matching is exact and case-sensitive: Entra app-role values are
// case-sensitive, and folding case would let a differently cased group in a
// less controlled directory grant a role. Deny by default: no match, no role;
// only known roles are granted, and a blank value in the map matches nothing.
func mapRoles(values []string, roleMap map[Role][]string) []Role {
	var roles []Role
	for _, r := range knownRoles {
		for _, want := range roleMap[r] {
			if want != "" && slices.Contains(values, want) {
				roles = append(roles, r)
				break
			}
		}
	}
	return roles
}
