package hub

import "regexp"

// hubNamePattern is the one rule for a configured hub's name. The name is a
// URL segment (/hubs/<name>/jobs), a metrics label, part of an audit entry
// and, upper-cased with '-' as '_', part of the HUBJOBS_HUBS_<NAME>_…
// environment variables: lowercase letters, digits and '-' keep it valid and
// unambiguous in all four without escaping.
var hubNamePattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// ValidHubName reports whether name can be a configured hub's name:
// 1 to 32 characters of a-z, 0-9 and '-'. Config rejects any other name at
// start-up; request paths that fail it name no hub and are refused before
// anything is looked up or recorded.
func ValidHubName(name string) bool { return hubNamePattern.MatchString(name) }
