package main

// Black-box checks of the simulator's device-query surface (issue 10: "the
// simulator's new query surface checked by an independent client written
// from the contract and the reference").
//
// Written from the device-query and jobs research notes and the `hubsim`
// bullet of the product contract alone, before reading the simulator's
// code. The rules of hubsim_blackbox_test.go apply: nothing from hub/ or
// hub/hubsim/ is imported, requests are plain net/http, and where the
// reference says [UNVERIFIED] the check accepts the choice hub/hubsim's
// README documents, saying so next to the assertion.
//
// Every expected device set below was worked out by hand from bbFleet, not
// computed by a second evaluator, so a wrong simulator cannot agree with a
// wrong test by construction.

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// bbDevice is one entry of a --registry file, in the contract's shape
// {"deviceId", "tags"?, "reported"?, "behaviour"?}.
type bbDevice struct {
	DeviceID  string         `json:"deviceId"`
	Tags      map[string]any `json:"tags,omitempty"`
	Reported  map[string]any `json:"reported,omitempty"`
	Behaviour string         `json:"behaviour,omitempty"`
}

// bbFleet is the registry every query check runs against. Device ids may
// hold a single quote (reference §6 of the jobs notes: `'` is in the
// documented id character set) but not a backslash, so the backslash
// escape is exercised through tag values.
var bbFleet = []bbDevice{
	{DeviceID: "dev-a", Tags: map[string]any{"site": "paris", "ring": "canary", "floor": 3, "group": map[string]any{"name": "g1"}},
		Reported: map[string]any{"fw": "1.0", "temp": 21.5, "online": true}},
	{DeviceID: "dev-b", Tags: map[string]any{"site": "lyon", "ring": "broad", "floor": 7},
		Reported: map[string]any{"fw": "2.0", "temp": 30, "online": false}, Behaviour: "fail"},
	{DeviceID: "dev-c", Tags: map[string]any{"site": "paris", "ring": "early", "floor": 0, "path": `C:\fw\new`},
		Reported: map[string]any{"fw": "2.0"}, Behaviour: "unhealthy"},
	{DeviceID: "o'brien", Tags: map[string]any{"site": "o'hare", "ring": "broad", "floor": 12}, Behaviour: "ok"},
	{DeviceID: "dev-d"},
	{DeviceID: "dev-e", Tags: map[string]any{"site": "berlin", "ring": "broad", "note": `say "hi"`},
		Reported: map[string]any{"fw": "10.0", "temp": -4}},
	{DeviceID: "it's", Tags: map[string]any{"site": "rome", "ring": "canary", "floor": 3}},
}

// bbAll is every id of bbFleet, sorted.
func bbAll() []string {
	var ids []string
	for _, d := range bbFleet {
		ids = append(ids, d.DeviceID)
	}
	return slices.Sorted(slices.Values(ids))
}

// bbWriteRegistry writes devices as a --registry file and returns its path.
func bbWriteRegistry(t *testing.T, devices []bbDevice) string {
	t.Helper()
	raw, err := json.Marshal(devices)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "registry.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bbStartFleet runs `hubjobs hubsim --registry FILE` over bbFleet with a
// queries budget high enough never to throttle a check, plus args.
func bbStartFleet(t *testing.T, args ...string) *bbHub {
	t.Helper()
	base := []string{"--registry", bbWriteRegistry(t, bbFleet), "--queries-per-minute", "100000"}
	return bbStartHubsim(t, append(base, args...)...)
}

// query POSTs {"query": sql} to /devices/query (reference §1: lowercase key).
func (h *bbHub) query(t *testing.T, sql string, header map[string]string) bbResp {
	t.Helper()
	return h.do(t, bbReq{method: http.MethodPost, path: "/devices/query", body: map[string]any{"query": sql}, header: header})
}

// idsWhere reads every page of SELECT deviceId FROM devices WHERE where
// and returns the ids sorted; each item must be exactly {"deviceId": …}.
func (h *bbHub) idsWhere(t *testing.T, where string) []string {
	t.Helper()
	items := h.pages(t, bbReq{method: http.MethodPost, path: "/devices/query",
		body: map[string]any{"query": "SELECT deviceId FROM devices WHERE " + where}}, 100)
	for _, it := range items {
		if len(it) != 1 {
			t.Errorf("SELECT deviceId item %v: want only the deviceId key", it)
		}
	}
	return slices.Sorted(slices.Values(bbIDs(items, "deviceId")))
}

// count runs SELECT COUNT() AS numberOfDevices FROM devices [WHERE where]
// and checks the reference §1 shape: a one-element array
// [{"numberOfDevices": n}], x-ms-item-type Raw, never a continuation.
func (h *bbHub) count(t *testing.T, where string) int {
	t.Helper()
	sql := "SELECT COUNT() AS numberOfDevices FROM devices"
	if where != "" {
		sql += " WHERE " + where
	}
	// A page size of 1 must not page an aggregate.
	r := h.query(t, sql, map[string]string{"x-ms-max-item-count": "1"})
	if r.status != http.StatusOK {
		t.Fatalf("%s: status %d; body %s", sql, r.status, r.raw)
	}
	items := r.array(t)
	bbWantItemType(t, r, "Raw")
	if _, more := r.header[http.CanonicalHeaderKey("x-ms-continuation")]; more {
		t.Errorf("%s: a COUNT carries x-ms-continuation", sql)
	}
	// Zero matches: [UNVERIFIED] in the reference; the README documents [{"numberOfDevices":0}].
	if len(items) != 1 || len(items[0]) != 1 {
		t.Fatalf("%s: body %s, want [{\"numberOfDevices\":n}]", sql, r.raw)
	}
	n, ok := items[0]["numberOfDevices"].(float64)
	if !ok || n != float64(int(n)) || n < 0 {
		t.Fatalf("%s: numberOfDevices %v, want a whole number", sql, items[0]["numberOfDevices"])
	}
	return int(n)
}

// bbWantItemType checks x-ms-item-type (reference §1 table; `Raw` for
// plain projections is [UNVERIFIED] there and documented by the README).
func bbWantItemType(t *testing.T, r bbResp, want string) {
	t.Helper()
	if got := r.header.Get("x-ms-item-type"); got != want {
		t.Errorf("x-ms-item-type %q, want %q", got, want)
	}
}

// bbWhereCases are conditions and the devices of bbFleet each selects.
// Where the reference is silent or [UNVERIFIED] the README's choice is
// named in the case.
var bbWhereCases = []struct {
	name, where string
	want        []string
}{
	{"= on a tag", "tags.site = 'paris'", []string{"dev-a", "dev-c"}},
	// README: a comparison with an undefined property is false, so dev-d (no tags) is in neither.
	{"!= skips undefined", "tags.site != 'paris'", []string{"dev-b", "dev-e", "it's", "o'brien"}},
	{"<> is !=", "tags.site <> 'paris'", []string{"dev-b", "dev-e", "it's", "o'brien"}},
	{"<", "tags.floor < 3", []string{"dev-c"}},
	{">", "tags.floor > 3", []string{"dev-b", "o'brien"}},
	{"<=", "tags.floor <= 3", []string{"dev-a", "dev-c", "it's"}},
	{">=", "tags.floor >= 7", []string{"dev-b", "o'brien"}},
	{"hex number", "tags.floor = 0x7", []string{"dev-b"}},
	{"decimal on reported", "properties.reported.temp < 21.5", []string{"dev-e"}},
	{"exponent", "properties.reported.temp >= 2.15e1", []string{"dev-a", "dev-b"}},
	{"integer equals decimal", "tags.floor = 3.0", []string{"dev-a", "it's"}},
	{"boolean true", "properties.reported.online = true", []string{"dev-a"}},
	{"boolean false", "properties.reported.online = false", []string{"dev-b"}},
	{"number is not a string", "tags.floor = '3'", nil},
	// Strings compare lexically (reference §2): "10.0" > "1.5" because '0' > '.'.
	{"strings compare lexically", "properties.reported.fw > '1.5'", []string{"dev-b", "dev-c", "dev-e"}},
	{"negative number", "properties.reported.temp = -4", []string{"dev-e"}},
	{"literal on the left of =", "'paris' = tags.site", []string{"dev-a", "dev-c"}},
	// 3 < floor is floor > 3: the operator turns round with its operands.
	{"literal on the left of <", "3 < tags.floor", []string{"dev-b", "o'brien"}},
	{"literal on the left of >=", "3 >= tags.floor", []string{"dev-a", "dev-c", "it's"}},
	{"deep parentheses", "((((deviceId = 'dev-a'))))", []string{"dev-a"}},
	{"\\u escape of a letter", `deviceId = 'dev-\u0061'`, []string{"dev-a"}},
	{"IN", "tags.ring IN ['canary', 'early']", []string{"dev-a", "dev-c", "it's"}},
	{"IN numbers", "tags.floor IN [3, 12]", []string{"dev-a", "it's", "o'brien"}},
	// README: undefined is false for every operator, NIN included.
	{"IN with double quotes", `deviceId in ["dev-a", 'dev-b']`, []string{"dev-a", "dev-b"}},
	{"NIN", "tags.ring NIN ['canary', 'early']", []string{"dev-b", "dev-e", "o'brien"}},
	{"AND", "tags.site = 'paris' AND tags.ring = 'early'", []string{"dev-c"}},
	{"OR", "tags.site = 'lyon' OR tags.ring = 'canary'", []string{"dev-a", "dev-b", "it's"}},
	// README: NOT is two-valued, so NOT of a false comparison on an undefined tag matches.
	{"NOT", "NOT tags.site = 'paris'", []string{"dev-b", "dev-d", "dev-e", "it's", "o'brien"}},
	{"NOT of parentheses", "NOT (tags.site = 'paris' OR tags.ring = 'broad')", []string{"dev-d", "it's"}},
	{"parentheses", "(tags.site = 'paris' OR tags.site = 'lyon') AND tags.floor > 0", []string{"dev-a", "dev-b"}},
	// AND binds tighter than OR: paris OR (lyon AND floor = 0); left to right would give only dev-c.
	{"AND before OR", "tags.site = 'paris' OR tags.site = 'lyon' AND tags.floor = 0", []string{"dev-a", "dev-c"}},
	{"IS_DEFINED", "IS_DEFINED(tags.path)", []string{"dev-c"}},
	{"NOT IS_DEFINED", "NOT IS_DEFINED(tags.site)", []string{"dev-d"}},
	{"IS_DEFINED on reported", "IS_DEFINED(properties.reported.fw) AND NOT IS_DEFINED(properties.reported.temp)", []string{"dev-c"}},
	{"desired before any job", "IS_DEFINED(properties.desired.fw)", nil},
	{"nested tag through [[group]]", "tags.[[group]].name = 'g1'", []string{"dev-a"}},
	{"quote escaped with backslash", `deviceId = 'o\'brien'`, []string{"o'brien"}},
	{"quote inside double quotes", `deviceId = "o'brien"`, []string{"o'brien"}},
	{"quote as \\u0027", `deviceId = 'o\u0027brien'`, []string{"o'brien"}},
	{"escaped quotes in IN", `deviceId IN ['o\'brien', 'it\'s', 'nope']`, []string{"it's", "o'brien"}},
	{"escaped quote in a tag", `tags.site = 'o\'hare'`, []string{"o'brien"}},
	{"backslash escaped", `tags.path = 'C:\\fw\\new'`, []string{"dev-c"}},
	{"double quote escaped", `tags.note = "say \"hi\""`, []string{"dev-e"}},
	{"double quote in single quotes", `tags.note = 'say "hi"'`, []string{"dev-e"}},
	// Reference §2: property names case-insensitive, values case-sensitive.
	{"DeviceId", "DeviceId = 'dev-a'", []string{"dev-a"}},
	{"property name case", "tags.SITE = 'paris'", []string{"dev-a", "dev-c"}},
	{"value case", "tags.site = 'PARIS'", nil},
	{"lower-case keywords", "tags.site = 'paris' and not tags.ring in ['canary']", []string{"dev-c"}},
	{"status", "status = 'enabled'", bbAll()},
	// Reference §2: twin queries accept STARTSWITH (no underscore).
	{"STARTSWITH", "STARTSWITH(deviceId, 'dev-')", []string{"dev-a", "dev-b", "dev-c", "dev-d", "dev-e"}},
	{"startswith with an escape", `startswith(tags.site, 'o\'h')`, []string{"o'brien"}},
	{"NOT STARTSWITH", "NOT STARTSWITH(deviceId, 'dev')", []string{"it's", "o'brien"}},
	{"STARTSWITH skips devices without the tag", "STARTSWITH(tags.path, 'C:')", []string{"dev-c"}},
	// Reference §2 [doc]: prefixing the collection also works.
	{"devices.tags prefix", "devices.tags.site = 'paris'", []string{"dev-a", "dev-c"}},
	{"devices.deviceId prefix", "devices.deviceId = 'dev-a'", []string{"dev-a"}},
	{"version", "version >= 1", bbAll()},
	{"connectionState", "IS_DEFINED(connectionState)", bbAll()},
	// Reference §2 lists these as addressable too (the twin of §1 carries them).
	{"capabilities.iotEdge", "capabilities.iotEdge = false", bbAll()},
	{"devices.capabilities.iotEdge", "devices.capabilities.iotEdge = true", nil},
	{"etag", "IS_DEFINED(etag)", bbAll()},
	{"lastActivityTime", "IS_DEFINED(lastActivityTime)", bbAll()},
}

func TestBlackboxQueryWhereGrammar(t *testing.T) {
	t.Parallel()
	h := bbStartFleet(t)
	for _, c := range bbWhereCases {
		t.Run(c.name, func(t *testing.T) {
			want := slices.Sorted(slices.Values(c.want))
			if got := h.idsWhere(t, c.where); !slices.Equal(got, want) {
				t.Errorf("WHERE %s\n got %q\nwant %q", c.where, got, want)
			}
			if n := h.count(t, c.where); n != len(want) {
				t.Errorf("COUNT WHERE %s = %d, want %d", c.where, n, len(want))
			}
		})
	}
}

func TestBlackboxQueryShapes(t *testing.T) {
	t.Parallel()
	h := bbStartFleet(t)

	t.Run("SELECT * returns twins", func(t *testing.T) {
		r := h.query(t, "SELECT * FROM devices", nil)
		if r.status != http.StatusOK {
			t.Fatalf("status %d; body %s", r.status, r.raw)
		}
		twins := r.array(t)
		bbWantItemType(t, r, "Twin")
		if got := slices.Sorted(slices.Values(bbIDs(twins, "deviceId"))); !slices.Equal(got, bbAll()) {
			t.Fatalf("SELECT * devices %q, want the registry %q", got, bbAll())
		}
		byID := map[string]map[string]any{}
		for _, tw := range twins {
			bbCheckTwinShape(t, tw)
			byID[tw["deviceId"].(string)] = tw
		}
		for _, d := range bbFleet {
			tw := byID[d.DeviceID]
			tags, has := tw["tags"]
			// Reference §1 [real]: tags is absent when the twin has none.
			if len(d.Tags) == 0 {
				if has {
					t.Errorf("%s has no tags but the twin carries %v", d.DeviceID, tags)
				}
			} else if !bbJSONEqual(tags, d.Tags) {
				t.Errorf("%s tags %v, want the registry's %v", d.DeviceID, tags, d.Tags)
			}
			reported := tw["properties"].(map[string]any)["reported"].(map[string]any)
			for k, v := range d.Reported {
				if !bbJSONEqual(reported[k], v) {
					t.Errorf("%s reported.%s = %v, want %v", d.DeviceID, k, reported[k], v)
				}
			}
		}
	})

	t.Run("SELECT deviceId with WHERE", func(t *testing.T) {
		r := h.query(t, "SELECT deviceId FROM devices WHERE tags.ring = 'canary'", nil)
		if r.status != http.StatusOK {
			t.Fatalf("status %d; body %s", r.status, r.raw)
		}
		items := r.array(t)
		bbWantItemType(t, r, "Raw")
		want := []map[string]any{{"deviceId": "dev-a"}, {"deviceId": "it's"}}
		slices.SortFunc(items, func(a, b map[string]any) int { return strings.Compare(a["deviceId"].(string), b["deviceId"].(string)) })
		if !bbJSONEqual(items, want) {
			t.Errorf("body %s, want the items %v", r.raw, want)
		}
	})

	t.Run("projections answer in the twin's casing and under their alias", func(t *testing.T) {
		r := h.query(t, "SELECT DeviceId, tags.site AS site FROM devices WHERE tags.ring = 'canary' OR deviceId = 'dev-d'", nil)
		if r.status != http.StatusOK {
			t.Fatalf("status %d; body %s", r.status, r.raw)
		}
		items := r.array(t)
		slices.SortFunc(items, func(a, b map[string]any) int { return strings.Compare(a["deviceId"].(string), b["deviceId"].(string)) })
		// Reference §1: keys in the twin's own casing; README: an undefined property is left out.
		want := []map[string]any{{"deviceId": "dev-a", "site": "paris"}, {"deviceId": "dev-d"}, {"deviceId": "it's", "site": "rome"}}
		if !bbJSONEqual(items, want) {
			t.Errorf("body %s, want %v", r.raw, want)
		}
	})

	t.Run("COUNT under another alias", func(t *testing.T) {
		r := h.query(t, "SELECT COUNT() AS n FROM devices WHERE tags.floor = 3", nil)
		if r.status != http.StatusOK || !bbJSONEqual(r.array(t), []map[string]any{{"n": 2}}) {
			t.Errorf("%d %s, want [{\"n\":2}]", r.status, r.raw)
		}
	})

	t.Run("SELECT * with WHERE matching nothing is []", func(t *testing.T) {
		r := h.query(t, "SELECT * FROM devices WHERE deviceId = 'nope'", nil)
		if r.status != http.StatusOK || strings.TrimSpace(string(r.raw)) != "[]" {
			t.Errorf("%d %s, want 200 [] (reference §1: empty result is [])", r.status, r.raw)
		}
	})

	t.Run("COUNT", func(t *testing.T) {
		if n := h.count(t, ""); n != len(bbFleet) {
			t.Errorf("COUNT() = %d, want %d", n, len(bbFleet))
		}
		if n := h.count(t, "deviceId = 'nope'"); n != 0 {
			t.Errorf("COUNT() of nothing = %d", n)
		}
	})

	t.Run("a query over several lines", func(t *testing.T) {
		r := h.query(t, "SELECT deviceId\nFROM devices\r\n\tWHERE tags.site = 'lyon'", nil)
		if r.status != http.StatusOK || !bbJSONEqual(r.array(t), []map[string]any{{"deviceId": "dev-b"}}) {
			t.Errorf("%d %s", r.status, r.raw)
		}
	})

	t.Run("keywords in any case", func(t *testing.T) {
		r := h.query(t, "select count() as numberOfDevices from devices where tags.ring = 'broad'", nil)
		if r.status != http.StatusOK || !bbJSONEqual(r.array(t), []map[string]any{{"numberOfDevices": 3}}) {
			t.Errorf("%d %s, want [{\"numberOfDevices\":3}]", r.status, r.raw)
		}
	})
}

// bbCheckTwinShape checks a twin against the keys of reference §1 (real
// recording) and the Twin schema of the jobs notes §2.
func bbCheckTwinShape(t *testing.T, tw map[string]any) {
	t.Helper()
	allowed := []string{"deviceId", "etag", "deviceEtag", "status", "statusReason", "statusUpdateTime", "connectionState",
		"lastActivityTime", "cloudToDeviceMessageCount", "authenticationType", "x509Thumbprint", "version", "properties",
		"capabilities", "tags", "deviceScope", "parentScopes", "modelId"}
	for k := range tw {
		if !slices.Contains(allowed, k) {
			t.Errorf("twin %v: key %q is not a twin wire name", tw["deviceId"], k)
		}
	}
	for _, k := range []string{"deviceId", "etag", "version", "status", "connectionState", "properties"} {
		if _, ok := tw[k]; !ok {
			t.Errorf("twin %v: no %q", tw["deviceId"], k)
		}
	}
	if s := tw["status"]; s != "enabled" && s != "disabled" {
		t.Errorf("twin %v: status %v", tw["deviceId"], s)
	}
	if s := tw["connectionState"]; s != "Connected" && s != "Disconnected" {
		t.Errorf("twin %v: connectionState %v (capitalised on the wire)", tw["deviceId"], s)
	}
	for _, k := range []string{"statusUpdateTime", "lastActivityTime"} {
		if s, ok := tw[k].(string); ok && !strings.HasSuffix(s, "Z") {
			t.Errorf("twin %v: %s %q has no Z (reference §1: twin times carry Z)", tw["deviceId"], k, s)
		}
	}
	props, _ := tw["properties"].(map[string]any)
	for _, section := range []string{"desired", "reported"} {
		s, ok := props[section].(map[string]any)
		if !ok {
			t.Errorf("twin %v: properties.%s is not an object", tw["deviceId"], section)
			continue
		}
		if _, ok := s["$version"].(float64); !ok {
			t.Errorf("twin %v: properties.%s.$version %v", tw["deviceId"], section, s["$version"])
		}
		if meta, _ := s["$metadata"].(map[string]any); meta == nil || meta["$lastUpdated"] == nil {
			t.Errorf("twin %v: properties.%s.$metadata.$lastUpdated missing", tw["deviceId"], section)
		}
	}
}

// bbJSONEqual compares two values as JSON (numbers as float64).
func bbJSONEqual(a, b any) bool {
	norm := func(v any) any {
		raw, _ := json.Marshal(v)
		var out any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	x, _ := json.Marshal(norm(a))
	y, _ := json.Marshal(norm(b))
	return string(x) == string(y)
}

func TestBlackboxQueryRefusals(t *testing.T) {
	t.Parallel()
	h := bbStartFleet(t)
	for _, sql := range []string{
		// The SQL doubling is undocumented (reference §2); the README refuses it.
		"SELECT deviceId FROM devices WHERE deviceId = 'o''brien'",
		`SELECT deviceId FROM devices WHERE tags.path = 'C:\qfw'`, // not a documented escape
		"SELECT deviceId FROM devices WHERE tags.site = 'paris",   // unterminated
		"SELECT deviceId FROM devices WHERE STARTS_WITH(deviceId, 'dev')",
		"SELECT deviceId FROM devices WHERE",
		"SELECT deviceId FROM devices WHERE deviceId =",
		"SELECT deviceId FROM devices WHERE (tags.site = 'paris'",
		"SELECT deviceId FROM devices WHERE tags.site = 'paris')",
		"SELECT deviceId FROM devices WHERE tags.ring IN 'canary'",
		"SELECT deviceId FROM devices WHERE tags.site == 'paris'",
		"SELECT deviceId FROM devices WHERE AND tags.site = 'paris'",
		"SELECT deviceId FROM devices WHERE tags.site = 'paris' tags.ring = 'broad'",
		"SELECT deviceId FROM devices WHERE IS_DEFINED()",
		"SELECT deviceId FROM devices WHERE STARTSWITH(deviceId)",
		"SELECT * FROM device",
		"SELECT * FORM devices",
		"SELECT deviceId devices",
		"SELECT COUNT() AS numberOfDevices FROM devices WHERE",
		// Reference §2: devices.jobs takes only SELECT *, and no twin conditions.
		"SELECT COUNT() AS numberOfDevices FROM devices.jobs",
		"SELECT deviceId FROM devices.jobs",
		"SELECT * FROM devices.jobs WHERE tags.site = 'paris'",
	} {
		t.Run(sql, func(t *testing.T) {
			r := h.query(t, sql, nil)
			e := r.wantError(t, http.StatusBadRequest, "ArgumentInvalid")
			if e.format != "A" || !strings.Contains(e.text, "position") {
				t.Errorf("format %s text %q: want format A naming the position (README)", e.format, e.text)
			}
		})
	}
	t.Run("a body without a query", func(t *testing.T) {
		for _, body := range []string{`{}`, `not json`, `{"query":""}`} {
			r := h.do(t, bbReq{method: http.MethodPost, path: "/devices/query", body: body})
			if r.status != http.StatusBadRequest {
				t.Errorf("body %s: status %d, want 400", body, r.status)
				continue
			}
			r.parseError(t)
		}
	})
}

func TestBlackboxQueryPaging(t *testing.T) {
	t.Parallel()
	h := bbStartFleet(t)
	page := func(t *testing.T, sql string, size int, token string) bbResp {
		t.Helper()
		hdr := map[string]string{"x-ms-max-item-count": strconv.Itoa(size)}
		if token != "" {
			hdr["x-ms-continuation"] = token
		}
		return h.query(t, sql, hdr)
	}

	for _, size := range []int{1, 2, 3, 7, 100} {
		t.Run("SELECT deviceId by "+strconv.Itoa(size), func(t *testing.T) {
			items, pagesSeen := h.pagesCounted(t, bbReq{method: http.MethodPost, path: "/devices/query",
				body: map[string]any{"query": "SELECT deviceId FROM devices"}}, size)
			ids := bbIDs(items, "deviceId")
			if got := slices.Sorted(slices.Values(ids)); !slices.Equal(got, bbAll()) {
				t.Errorf("pages of %d gave %q, want each device once: %q", size, ids, bbAll())
			}
			if want := (len(bbFleet) + size - 1) / size; pagesSeen != want {
				t.Errorf("pages of %d: %d requests, want %d (full pages, continuation only while more exist)", size, pagesSeen, want)
			}
		})
	}

	t.Run("a page size above the cap", func(t *testing.T) {
		// The real cap is [UNVERIFIED] (100, 1000 or 10000); the README documents 100.
		big := bbStartHubsim(t, "--devices", "250")
		_, pagesSeen := big.pagesCounted(t, bbReq{method: http.MethodPost, path: "/devices/query",
			body: map[string]any{"query": "SELECT deviceId FROM devices"}}, 1000)
		if pagesSeen != 3 {
			t.Errorf("250 devices asked 1000 a page: %d pages, want 3 of at most 100", pagesSeen)
		}
	})

	const sql = "SELECT * FROM devices WHERE tags.ring = 'broad'"
	first := page(t, sql, 2, "")
	if first.status != http.StatusOK || len(first.array(t)) != 2 {
		t.Fatalf("first page: %d %s", first.status, first.raw)
	}
	bbWantItemType(t, first, "Twin")
	token := first.header.Get("x-ms-continuation")
	if token == "" {
		t.Fatal("3 broad devices by 2: no continuation after the first page")
	}
	// Reference §1: the next page re-POSTs the same body with the token; doing it twice gives the same page.
	second, again := page(t, sql, 2, token), page(t, sql, 2, token)
	if second.status != http.StatusOK || string(second.raw) != string(again.raw) {
		t.Errorf("the same continuation twice: %d %s then %d %s", second.status, second.raw, again.status, again.raw)
	}
	if _, more := second.header[http.CanonicalHeaderKey("x-ms-continuation")]; more {
		t.Errorf("last page carries x-ms-continuation (reference §1: absent on the last page)")
	}
	all := append(first.array(t), second.array(t)...)
	if got := slices.Sorted(slices.Values(bbIDs(all, "deviceId"))); !slices.Equal(got, []string{"dev-b", "dev-e", "o'brien"}) {
		t.Errorf("two pages of broad twins: %q", got)
	}

	// README: tokens are bound to their query; another query with it is 400 ArgumentInvalid.
	page(t, "SELECT * FROM devices WHERE tags.ring = 'canary'", 2, token).wantError(t, http.StatusBadRequest, "ArgumentInvalid")
	// README: a page size that is not a number is 400 too.
	if r := page(t, sql, -1, ""); r.status != http.StatusBadRequest {
		t.Errorf("x-ms-max-item-count -1: status %d, want 400", r.status)
	}
	if r := h.query(t, sql, map[string]string{"x-ms-max-item-count": "ten"}); r.status != http.StatusBadRequest {
		t.Errorf("x-ms-max-item-count ten: status %d, want 400", r.status)
	}
	// README: a non-positive page size is 400.
	if r := page(t, sql, 0, ""); r.status != http.StatusBadRequest {
		t.Errorf("x-ms-max-item-count 0: status %d, want 400", r.status)
	} else {
		r.parseError(t)
	}
}
