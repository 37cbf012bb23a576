package hubsim

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// grammarFleet is a small registry with every kind of twin value.
func grammarFleet() []device {
	return newDevices([]Device{
		{DeviceID: "d1", Tags: map[string]any{"site": "paris", "ring": "canary", "floor": 1.0, "location": map[string]any{"region": "eu"}}, Reported: map[string]any{"fw": "1.0", "battery": 80.0, "online": true}},
		{DeviceID: "d2", Tags: map[string]any{"site": "paris", "ring": "broad", "floor": 2.0, "group": "a"}, Reported: map[string]any{"fw": "1.2", "battery": 15.0, "online": false, "note": nil}},
		{DeviceID: "d3", Tags: map[string]any{"site": "lyon", "ring": "broad", "floor": 3.0}, Reported: map[string]any{"fw": "2.0"}},
		{DeviceID: "it's", Tags: map[string]any{"site": `o'hare\n`}},
		{DeviceID: `q"d`},
	}, testStart)
}

func matching(t *testing.T, fleet []device, cond string) []string {
	t.Helper()
	c, err := parseCondition(cond)
	if err != nil {
		t.Fatalf("parseCondition(%q): %v", cond, err)
	}
	var got []string
	for i := range fleet {
		if c.matches(&fleet[i]) {
			got = append(got, fleet[i].id)
		}
	}
	return got
}

func TestWhereGrammarMatches(t *testing.T) {
	fleet := grammarFleet()
	all := []string{"d1", "d2", "d3", "it's", `q"d`}
	tests := []struct {
		cond string
		want []string
	}{
		{"*", all},
		{"  *  ", all},
		// comparison operators on strings and numbers
		{"deviceId = 'd1'", []string{"d1"}},
		{"deviceId='d2'", []string{"d2"}},
		{`deviceId = "d3"`, []string{"d3"}},
		{"deviceId = 'D1'", nil},                         // values are case-sensitive
		{"DeviceId = 'd1'", []string{"d1"}},              // property names are not
		{"tags.SITE = 'lyon'", []string{"d3"}},           // nor are nested names
		{"tags.site != 'paris'", []string{"d3", "it's"}}, // undefined never matches
		{"tags.site <> 'paris'", []string{"d3", "it's"}},
		{"tags.floor > 1", []string{"d2", "d3"}},
		{"tags.floor >= 2", []string{"d2", "d3"}},
		{"tags.floor < 2", []string{"d1"}},
		{"tags.floor <= 2.0", []string{"d1", "d2"}},
		{"tags.floor = 0x2", []string{"d2"}},
		{"tags.floor > -1e1", []string{"d1", "d2", "d3"}},
		{"tags.floor > '1'", nil}, // a number never orders against a string
		{"tags.floor = '1'", nil},
		{"properties.reported.fw >= '1.2'", []string{"d2", "d3"}},
		{"properties.reported.online = true", []string{"d1"}},
		{"properties.reported.online = false", []string{"d2"}},
		{"properties.reported.note = null", []string{"d2"}},
		{"properties.reported.note != null", nil},
		{"properties.reported.fw != null", []string{"d1", "d2", "d3"}},
		{"'paris' = tags.site", []string{"d1", "d2"}},
		{"tags.location = 'eu'", nil}, // objects never compare
		{"tags.location.region = 'eu'", []string{"d1"}},
		{"tags.[[group]] = 'a'", []string{"d2"}},
		{"properties.desired.$version = 1", all},
		{"version = 1", all},
		// IN and NIN
		{"deviceId IN ['d1','d3']", []string{"d1", "d3"}},
		{"deviceId in [ 'd1' , 'nope' ]", []string{"d1"}},
		{"tags.floor IN [1, 3]", []string{"d1", "d3"}},
		{"tags.site NIN ['paris']", []string{"d3", "it's"}},
		{"properties.reported.online NIN [true]", []string{"d2"}},
		// escapes: only the documented backslash forms
		{`deviceId = 'it\'s'`, []string{"it's"}},
		{`deviceId = "it's"`, []string{"it's"}},
		{`deviceId = "q\"d"`, []string{`q"d`}},
		{`deviceId = 'q"d'`, []string{`q"d`}},
		{`tags.site = 'o\'hare\\n'`, []string{"it's"}},
		{`deviceId = '\u0064\u0031'`, []string{"d1"}},
		// logic, precedence and parentheses
		{"tags.site = 'paris' AND tags.ring = 'broad'", []string{"d2"}},
		{"tags.site = 'lyon' OR tags.ring = 'canary'", []string{"d1", "d3"}},
		{"tags.site = 'lyon' OR tags.site = 'paris' AND tags.ring = 'canary'", []string{"d1", "d3"}}, // AND binds tighter
		{"(tags.site = 'lyon' OR tags.site = 'paris') AND tags.ring = 'broad'", []string{"d2", "d3"}},
		{"NOT tags.site = 'paris'", []string{"d3", "it's", `q"d`}}, // two-valued: NOT of undefined is true
		{"NOT NOT deviceId = 'd1'", []string{"d1"}},
		{"NOT tags.site = 'paris' AND IS_DEFINED(tags.site)", []string{"d3", "it's"}}, // NOT binds tighter than AND
		{"NOT (deviceId = 'd1' OR deviceId = 'd2') AND IS_DEFINED(tags.site)", []string{"d3", "it's"}},
		{"is_defined(properties.reported.note)", []string{"d2"}}, // true even when null
		{"IS_DEFINED(tags.floor) and not is_defined(properties.reported.online)", []string{"d3"}},
		{"NOT IS_DEFINED(tags.site) OR tags.site != 'paris'", []string{"d3", "it's", `q"d`}},
		{"((deviceId = 'd1'))", []string{"d1"}},
		// STARTSWITH: real twin queries accept it (not in the documented grammar)
		{"STARTSWITH(deviceId, 'd')", []string{"d1", "d2", "d3"}},
		{"startswith(tags.site, 'o\\'h')", []string{"it's"}},
		{"STARTSWITH(deviceId, '')", all},
		{"STARTSWITH(deviceId, 'D')", nil},                                // values are case-sensitive
		{"STARTSWITH(tags.floor, '1')", nil},                              // a number is not a string
		{"STARTSWITH(tags.location, 'e')", nil},                           // nor an object
		{"NOT STARTSWITH(tags.site, 'p')", []string{"d3", "it's", `q"d`}}, // undefined never starts with anything
		{"STARTSWITH(tags.site, 'p') AND tags.ring = 'broad'", []string{"d2"}},
		// the collection's name in front, as the docs' examples write it
		{"devices.deviceId = 'd1'", []string{"d1"}},
		{"devices.tags.site = 'lyon' OR Devices.properties.reported.fw = '1.2'", []string{"d2", "d3"}},
		// the other fields the docs call addressable, with the values SELECT * shows
		{"capabilities.iotEdge = false", all},
		{"devices.capabilities.iotEdge = true", nil},
		{"etag = 'AAAAAAAAAAE='", all},
		{"lastActivityTime < '2000-01-01'", all},
	}
	for _, tt := range tests {
		if got := matching(t, fleet, tt.cond); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s matches %q, want %q", tt.cond, got, tt.want)
		}
	}
}

func TestWhereGrammarRefusals(t *testing.T) {
	tests := []struct {
		cond, msg string
		pos       int
	}{
		{"", "empty", 1},
		{"   ", "empty", 1},
		{"deviceId = 'it''s'", `unexpected "s" after the condition`, 16}, // SQL doubling is not an escape
		{`deviceId = 'a\nb'`, `invalid escape \n`, 14},
		{`deviceId = 'a\u12'`, `invalid \u escape`, 14},
		{"deviceId = 'd1", "unterminated string", 12},
		{"deviceId = d1", "unknown property", 12},
		{"deviceId == 'd1'", "expected a value", 11},
		{"deviceId = 'd1' AND", "expected a value, found end of input", 20},
		{"deviceId = 'd1' OR OR deviceId = 'd2'", `expected a property, found "OR"`, 20},
		{"1 = 1", "needs a property", 1},
		{"deviceId = 'a' OR 'x' = 'x'", "needs a property", 19},
		{"deviceId IN []", "expected a value", 14},
		{"deviceId IN ('d1','d2')", `expected "["`, 13},
		{"deviceId IN ['d1' 'd2']", `expected "," or "]"`, 19},
		{"'d1' IN ['d1']", "IN needs a property", 6},
		{"deviceId IN [deviceId]", "expected a value", 14},
		{"* AND deviceId = 'd1'", "expected a value", 1},
		{"tags = 'x'", "unknown property", 1},
		{"properties.reported = 'x'", "unknown property", 1},
		{"properties.other.x = 1", "unknown property", 1},
		{"twin.x = 1", "unknown property", 1},
		{"tags..site = 'x'", "expected a property name", 6},
		{"tags.site = 1x", "after a number", 14},
		{"tags.site = 1e999", "invalid number", 13},
		{"(deviceId = 'd1'", `expected ")"`, 17},
		{"deviceId = 'd1')", `unexpected ")"`, 16},
		{"IS_DEFINED(deviceId", `expected ")"`, 20},
		{"IS_DEFINED('x')", "expected a property", 12},
		{"deviceId", "expected a comparison operator", 9},
		{"deviceId = 'd1'; DROP", "unexpected character ';'", 16},
		{"deviceId = 'd1' -- comment", `invalid number "-"`, 17},
		{"STARTS_WITH(deviceId, 'x')", "unknown property", 1}, // routing's spelling; twin queries refuse it
		{"STARTSWITH(deviceId)", `expected ","`, 20},
		{"STARTSWITH(deviceId, 1)", "STARTSWITH needs a string prefix", 22},
		{"STARTSWITH(deviceId, tags.site)", "STARTSWITH needs a string prefix", 22},
		{"STARTSWITH('a', 'a')", "expected a property", 12},
		{"STARTSWITH(deviceId, 'a'", `expected ")"`, 25},
		{"STARTSWITH = 'a'", `expected "("`, 12},
		{"devices = 'x'", "unknown property", 1},
		{"devices.twin.x = 1", "unknown property", 1},
		{"capabilities = false", "unknown property", 1},
		{"capabilities.other = false", "unknown property", 1},
		{"NOT", "expected a value", 4},
		{"tags.[[group = 'x'", "unterminated [[name]]", 6},
		{"tags.é = 'x'", "expected a property name", 6},
		{"deviceId = 'é' AND é", "unexpected character 'é'", 20}, // positions count characters, not bytes
	}
	for _, tt := range tests {
		_, err := parseCondition(tt.cond)
		var qe *QueryError
		if !errors.As(err, &qe) {
			t.Errorf("parseCondition(%q) = %v, want a *QueryError", tt.cond, err)
			continue
		}
		if !strings.Contains(qe.Msg, tt.msg) || qe.Pos != tt.pos {
			t.Errorf("parseCondition(%q): %q at %d, want %q at %d", tt.cond, qe.Msg, qe.Pos, tt.msg, tt.pos)
		}
	}
}

// The printer writes what the parser reads: parsing the printed form gives
// the same tree, and the printed form is fully parenthesised (precedence
// made explicit).
func TestWherePrintRoundTrip(t *testing.T) {
	tests := map[string]string{
		"a.b": "",
		"tags.site = 'lyon' OR tags.site = 'paris' AND NOT tags.ring <> 'canary'": "(tags.site = 'lyon' OR (tags.site = 'paris' AND NOT tags.ring != 'canary'))",
		`deviceId IN ["it's", 'a\\b', 1.5, true, null]`:                           `deviceId IN ['it\'s', 'a\\b', 1.5, true, null]`,
		"tags.[[group]] NIN [0x10] and is_defined(tags.[[a b]])":                  "(tags.group NIN [16] AND IS_DEFINED(tags.[[a b]]))",
		`not startswith(devices.tags.site, "o'h")`:                                `NOT STARTSWITH(devices.tags.site, 'o\'h')`,
	}
	for src, want := range tests {
		e, err := parseWhere(src, twinScope)
		if want == "" {
			if err == nil {
				t.Errorf("%q accepted", src)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got := e.String(); got != want {
			t.Errorf("%q printed as %q, want %q", src, got, want)
		}
		again, err := parseWhere(e.String(), twinScope)
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Errorf("%q: reparse of %q gave %v, %v", src, e.String(), again, err)
		}
	}
}
