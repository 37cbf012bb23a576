package config

import (
	"reflect"
	"regexp"
	"strings"
)

// Environment overrides: every key can be set by HUBJOBS_<UPPER_SNAKE_PATH>,
// which wins over the file (HUBJOBS_OIDC_CLIENT_SECRET,
// HUBJOBS_SESSION_IDLE_TIMEOUT, HUBJOBS_ROLLOUTS_POLL_INTERVAL). An entry of
// a named list goes by its name, '-' written '_':
// HUBJOBS_HUBS_EU_WEST_CONNECTION_STRING, HUBJOBS_NOTIFY_WEBHOOKS_OPS_SECRET.
// The entries themselves are declared in the file; the environment cannot
// add one. Lists take a comma-separated value (HUBJOBS_SESSION_KEYS=k1,k2).
// Override values are taken literally (no ${} expansion), so a secret with a
// $ in it needs no escaping; an empty variable counts as unset.

// EnvPrefix starts every override variable; other commands (healthcheck)
// read HUBJOBS_LISTEN by the same name.
const EnvPrefix = "HUBJOBS"

// envKey is the variable of key under prefix; "" when prefix is "" (an
// entry whose name cannot be part of a variable name has no overrides).
func envKey(prefix, key string) string {
	if prefix == "" {
		return ""
	}
	return prefix + "_" + strings.ToUpper(key)
}

// envNamePattern is what an entry's name must look like to address it from
// the environment. It is wider than the hub-name rule (which validation
// applies to hubs) because webhook names are up to 64 characters; an entry
// with any other name has no overrides, and validation reports its name.
var envNamePattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// entryEnv is the variable prefix of the list entry called name.
func entryEnv(listPrefix, name string) string {
	if !envNamePattern.MatchString(name) {
		return ""
	}
	return envKey(listPrefix, strings.ReplaceAll(name, "-", "_"))
}

// fromEnv sets v from its environment variable, if that is set, and reports
// whether it was: an override replaces the file's value before expansion,
// so a file that refers to an unset variable is fine when the key comes
// from the environment.
func (d *decoder) fromEnv(v reflect.Value, path, env string) bool {
	if env == "" {
		return false
	}
	text := d.getenv(env)
	if text == "" {
		return false
	}
	if v.Kind() == reflect.Slice {
		v.Set(reflect.ValueOf(splitList(text)))
		return true
	}
	if err := setScalar(v, text); err != nil {
		d.problem(path, "%v (from %s)", err, env)
	}
	return true
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
