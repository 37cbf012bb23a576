package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads the file at path, expands ${VAR}, applies HUBJOBS_* overrides
// from getenv and validates; problems come back as one *Error naming every
// bad key.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, documentError(err.Error())
	}
	return Parse(data, getenv)
}

// Parse is Load without the file system.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	root, err := parseYAML(data)
	if err != nil {
		return nil, err
	}
	doc := defaultDocument()
	d := &decoder{getenv: getenv}
	d.decodeStruct(root, reflect.ValueOf(&doc).Elem(), "", EnvPrefix)
	cfg := d.validate(&doc)
	if err := d.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// AuditDatabase reads only audit.database from the file at path (with its
// ${VAR} expansion and the HUBJOBS_AUDIT_DATABASE override) and checks its
// shape. The audit commands use it: an auditor may hold a copy of the
// portal's config whose secrets are ${VARS} they do not have, so no other
// key is expanded, checked or even required to be known.
func AuditDatabase(path string, getenv func(string) string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", documentError(err.Error())
	}
	root, err := parseYAML(data)
	if err != nil {
		return "", err
	}
	d := &decoder{getenv: getenv}
	db := DefaultDatabase
	node := d.child(root, "", "audit")
	node = d.child(node, "audit", "database")
	d.decodeValue(node, reflect.ValueOf(&db).Elem(), "audit.database", EnvPrefix+"_AUDIT_DATABASE")
	d.checkDatabase(db)
	return db, d.err()
}

func documentError(msg string) *Error { return &Error{Problems: []Problem{{Message: msg}}} }

// parseYAML returns the document's root node; nil for an empty document.
func parseYAML(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, documentError("not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return nil, nil
}

// decoder walks the YAML node tree and the environment into the document,
// then validates it, collecting problems instead of stopping at the first.
type decoder struct {
	getenv   func(string) string
	problems []Problem
}

// err is every problem found, or nil.
func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	return &Error{Problems: d.problems}
}

// problem records one problem with key, unless key (or a key inside it)
// already has one: a connection string that failed to expand is not also
// reported as missing.
func (d *decoder) problem(key, format string, args ...any) {
	for _, p := range d.problems {
		if p.Key == key || strings.HasPrefix(p.Key, key+".") || strings.HasPrefix(p.Key, key+"[") {
			return
		}
	}
	d.problems = append(d.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

var durationType = reflect.TypeFor[time.Duration]()

// yamlKey is a struct field's key, or "" for fields that are not keys.
func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return key
}

// child is the value of key in the mapping node (nil when absent), for the
// audit commands' one-key read.
func (d *decoder) child(node *yaml.Node, path, key string) *yaml.Node {
	node = resolveAlias(node)
	if isNull(node) {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		d.problem(displayPath(path), "must be a mapping of keys (line %d)", node.Line)
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i+1]
		}
	}
	return nil
}

// decodeStruct fills v from a mapping node (nil when the key is absent) and
// from the environment variables under env ("" when none apply).
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
		d.decodeValue(given[key], v.Field(index[key]), joinPath(path, key), envKey(env, key))
	}
}

// decodeValue fills one field: the environment wins over the file.
func (d *decoder) decodeValue(node *yaml.Node, v reflect.Value, path, env string) {
	node = resolveAlias(node)
	switch {
	case v.Kind() == reflect.Struct && v.Type() != durationType:
		d.decodeStruct(node, v, path, env)
		return
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		d.decodeEntries(node, v, path, env)
		return
	}
	if d.fromEnv(v, path, env) {
		return
	}
	switch {
	case v.Kind() == reflect.Slice:
		d.decodeList(node, v, path)
	case isNull(node):
	case node.Kind != yaml.ScalarNode:
		d.problem(path, "must be a single value (line %d)", node.Line)
	default:
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

// sequence is node's items, or nil with a problem when it is not a list.
func (d *decoder) sequence(node *yaml.Node, path string) ([]*yaml.Node, bool) {
	if isNull(node) {
		return nil, false
	}
	if node.Kind != yaml.SequenceNode {
		d.problem(path, "must be a list (line %d)", node.Line)
		return nil, false
	}
	return node.Content, true
}

// decodeList fills a []string from a sequence of scalars.
func (d *decoder) decodeList(node *yaml.Node, v reflect.Value, path string) {
	items, ok := d.sequence(node, path)
	if !ok {
		return
	}
	list := []string{}
	for i, item := range items {
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

// decodeEntries fills a list of named entries (hubs, notify.webhooks). Each
// entry starts from its type's defaults, and its environment prefix comes
// from its name in the file (see entryEnv), so HUBJOBS_HUBS_PROD_… addresses
// the hub named prod wherever it sits in the list.
func (d *decoder) decodeEntries(node *yaml.Node, v reflect.Value, path, env string) {
	items, ok := d.sequence(node, path)
	if !ok {
		return
	}
	entries := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		entry := entries.Index(i)
		if withDefaults, ok := entry.Addr().Interface().(interface{ setDefaults() }); ok {
			withDefaults.setDefaults()
		}
		d.decodeStruct(item, entry, fmt.Sprintf("%s[%d]", path, i), entryEnv(env, nameOf(item, d.getenv)))
	}
	v.Set(entries)
}

// nameOf peeks at an entry's name; problems with it are reported when the
// entry itself is decoded.
func nameOf(item *yaml.Node, getenv func(string) string) string {
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
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a number", text)
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Bool:
		// Only the two words: YAML 1.1's yes/no/on/off are a classic trap.
		switch text {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return fmt.Errorf("%q: want true or false", text)
		}
	case v.Kind() == reflect.String:
		v.SetString(text)
	default:
		return fmt.Errorf("unsupported config field type %s", v.Type()) // a programming error
	}
	return nil
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
