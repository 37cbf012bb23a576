package hubsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// knownFleet is a registry a test can count by hand: 250 devices, site
// paris for every fifth, ring canary for the first ten, a firmware
// version reported by the even ones.
func knownFleet() []Device {
	fleet := make([]Device, 250)
	for i := range fleet {
		site := "lyon"
		if i%5 == 0 {
			site = "paris"
		}
		ring := "broad"
		if i < 10 {
			ring = "canary"
		}
		fleet[i] = Device{DeviceID: fmt.Sprintf("k-%03d", i), Tags: map[string]any{"site": site, "ring": ring}}
		if i%2 == 0 {
			fleet[i].Reported = map[string]any{"fw": "1.0"}
		}
	}
	fleet[249].Tags = nil
	return fleet
}

func (h *harness) query(sql string, headers ...string) response {
	h.t.Helper()
	return h.do(http.MethodPost, "/devices/query", `{"query":`+quoteJSON(sql)+`}`, headers...)
}

func (h *harness) count(where string) int {
	h.t.Helper()
	sql := "SELECT COUNT() AS numberOfDevices FROM devices"
	if where != "" {
		sql += " WHERE " + where
	}
	r := h.query(sql)
	wantOK(h.t, r)
	if got := r.header.Get("x-ms-item-type"); got != "Raw" {
		h.t.Errorf("COUNT item type %q, want Raw", got)
	}
	items := r.array(h.t)
	if len(items) != 1 || len(items[0]) != 1 || r.header.Get("x-ms-continuation") != "" {
		h.t.Fatalf("COUNT body %s, want one {\"numberOfDevices\":n}", r.body)
	}
	return int(items[0]["numberOfDevices"].(float64))
}

// deviceIDs pages through SELECT deviceId … with page size size.
func (h *harness) deviceIDs(where string, size int) (ids []string, pages []int) {
	h.t.Helper()
	sql := "SELECT deviceId FROM devices"
	if where != "" {
		sql += " WHERE " + where
	}
	token := ""
	for {
		r := h.query(sql, "x-ms-max-item-count", fmt.Sprint(size), "x-ms-continuation", token)
		wantOK(h.t, r)
		if got := r.header.Get("x-ms-item-type"); got != "Raw" {
			h.t.Errorf("projection item type %q, want Raw", got)
		}
		items := r.array(h.t)
		pages = append(pages, len(items))
		for _, it := range items {
			if len(it) != 1 {
				h.t.Fatalf("projection item %v has keys other than deviceId", it)
			}
			ids = append(ids, it["deviceId"].(string))
		}
		if token = r.header.Get("x-ms-continuation"); token == "" {
			return ids, pages
		}
	}
}

func TestDeviceQueryCountsAndPaging(t *testing.T) {
	h := newHarness(t, Options{Registry: knownFleet()})
	counts := map[string]int{
		"":                     250,
		"tags.site = 'paris'":  50,
		"tags.ring = 'canary'": 10,
		"tags.site = 'paris' AND tags.ring = 'canary'":                       2,
		"tags.site = 'paris' OR tags.ring = 'canary'":                        58,
		"NOT IS_DEFINED(tags.site)":                                          1,
		"properties.reported.fw = '1.0'":                                     125,
		"deviceId IN ['k-000', 'k-001', 'nope']":                             2,
		"tags.site NIN ['paris']":                                            199,
		"tags.site = 'nowhere'":                                              0, // [{"numberOfDevices":0}], not []
		"deviceId >= 'k-240'":                                                10,
		"(tags.site = 'paris' OR tags.site = 'lyon') AND deviceId < 'k-010'": 10,
	}
	for where, want := range counts {
		if got := h.count(where); got != want {
			t.Errorf("COUNT WHERE %s = %d, want %d", where, got, want)
		}
	}
	ids, pages := h.deviceIDs("", 100)
	if !slices.Equal(pages, []int{100, 100, 50}) || ids[0] != "k-000" || ids[249] != "k-249" {
		t.Errorf("SELECT deviceId pages %v, first %s", pages, ids[0])
	}
	ids, pages = h.deviceIDs("tags.site = 'paris'", 20)
	if !slices.Equal(pages, []int{20, 20, 10}) || ids[1] != "k-005" {
		t.Errorf("paris pages %v, ids %v", pages, ids)
	}
	if _, pages = h.deviceIDs("tags.site = 'nowhere'", 20); !slices.Equal(pages, []int{0}) {
		t.Errorf("empty result pages %v", pages)
	}
	// A page size over the cap is clamped: the client must follow the token.
	if _, pages = h.deviceIDs("", 1000); !slices.Equal(pages, []int{100, 100, 50}) {
		t.Errorf("x-ms-max-item-count 1000 gave pages %v", pages)
	}
	// A token belongs to its query.
	r := h.query("SELECT deviceId FROM devices", "x-ms-max-item-count", "10")
	token := r.header.Get("x-ms-continuation")
	wantError(t, h.query("SELECT * FROM devices", "x-ms-continuation", token), http.StatusBadRequest, "ArgumentInvalid", "continuation")
}

func TestDeviceQueryShapes(t *testing.T) {
	h := newHarness(t, Options{Registry: knownFleet()})
	r := h.query("SELECT * FROM devices WHERE deviceId IN ['k-000', 'k-249']")
	wantOK(t, r)
	if got := r.header.Get("x-ms-item-type"); got != "Twin" {
		t.Errorf("SELECT * item type %q, want Twin", got)
	}
	twins := r.array(t)
	if len(twins) != 2 {
		t.Fatalf("twins %s", r.body)
	}
	for _, key := range []string{"deviceId", "etag", "deviceEtag", "status", "statusUpdateTime", "connectionState", "lastActivityTime", "cloudToDeviceMessageCount", "authenticationType", "x509Thumbprint", "version", "properties", "capabilities"} {
		if _, ok := twins[0][key]; !ok {
			t.Errorf("twin lacks %q: %v", key, twins[0])
		}
	}
	if _, ok := twins[1]["tags"]; ok {
		t.Errorf("a twin without tags carries a tags key: %v", twins[1])
	}
	props := twins[0]["properties"].(map[string]any)
	reported := props["reported"].(map[string]any)
	if reported["fw"] != "1.0" || reported["$version"] != 1.0 || props["desired"].(map[string]any)["$version"] != 1.0 {
		t.Errorf("properties %v", props)
	}
	if twins[0]["statusUpdateTime"] != "0001-01-01T00:00:00Z" || twins[0]["etag"] != "AAAAAAAAAAE=" {
		t.Errorf("twin times/etag %v %v", twins[0]["statusUpdateTime"], twins[0]["etag"])
	}
	r = h.query("select DeviceId, tags.site AS where_, tags.missing from devices where deviceId = 'k-005'")
	wantOK(t, r)
	if got := string(r.body); got != `[{"deviceId":"k-005","where_":"paris"}]` {
		t.Errorf("projection body %s", got)
	}
	r = h.query("SELECT COUNT() FROM devices WHERE tags.ring = 'canary'")
	if got := string(r.body); got != `[{"$1":10}]` {
		t.Errorf("COUNT without alias %s", got)
	}
}

func TestDeviceQueryRefusals(t *testing.T) {
	h := newHarness(t, Options{Registry: knownFleet()})
	tests := []struct{ sql, text string }{
		{"SELECT * FROM devices WHERE deviceId = 'it''s'", `unexpected "s" (GROUP BY, ORDER BY and TOP are not supported) at position 44`},
		{"SELECT * FROM devices WHERE tags.site = paris", `unknown property "paris"`},
		{"SELECT * FROM devices WHERE STARTS_WITH(deviceId, 'k')", `unknown property "STARTS_WITH"`}, // routing's spelling, refused by twin queries
		{"SELECT deviceId FROM devices GROUP BY tags.site", `unexpected "GROUP"`},
		{"SELECT TOP 5 * FROM devices", "expected *, COUNT() or a property"},
		{"SELECT * FROM devices.modules", "expected devices or devices.jobs"},
		{"DELETE FROM devices", "expected SELECT"},
	}
	for _, tt := range tests {
		wantError(t, h.query(tt.sql), http.StatusBadRequest, "ArgumentInvalid", "Invalid query: "+tt.text)
	}
}

// The documented limit is 8192 characters; the simulator refuses longer
// queries and job conditions with 412 PreconditionFailed (see README).
func TestQueryLengthLimit(t *testing.T) {
	h := newHarness(t, Options{Registry: knownFleet()})
	// inList is the longest deviceId IN [...] that fits in n characters,
	// padded with spaces to exactly n.
	inList := func(n int) string {
		cond := "deviceId IN []"
		for i := 0; ; i++ {
			item := sqlQuote(fmt.Sprintf("k-%03d", i))
			if i > 0 {
				item = "," + item
			}
			if len(cond)+len(item) > n {
				return cond + strings.Repeat(" ", n-len(cond))
			}
			cond = cond[:len(cond)-1] + item + "]"
		}
	}
	const prefix = "SELECT COUNT() AS n FROM devices WHERE "
	sql := prefix + inList(maxQueryLength-len(prefix))
	if len(sql) != maxQueryLength {
		t.Fatalf("query of %d characters", len(sql))
	}
	r := h.query(sql)
	wantOK(t, r)
	if n := r.array(t)[0]["n"].(float64); n != 250 {
		t.Fatalf("the longest query counts %v devices", n)
	}
	wantError(t, h.query(sql+" "), http.StatusPreconditionFailed, "PreconditionFailed", "8193 characters long")

	cond := inList(maxQueryLength)
	h.create("fits", methodJob("fits", cond))
	r = h.do(http.MethodPut, "/jobs/v2/long", methodJob("long", cond+" "))
	wantError(t, r, http.StatusPreconditionFailed, "PreconditionFailed", "maximum length of 8192 characters")
	// Characters, not bytes: 8192 two-byte characters fit.
	wide := "deviceId = '" + strings.Repeat("é", maxQueryLength-len("deviceId = ''")) + "'"
	h.create("wide", methodJob("wide", wide))
}

func TestQueriesThrottle(t *testing.T) {
	h := newHarness(t, Options{Registry: knownFleet(), QueriesPerMinute: 2, JobOpsPerMinute: 100})
	h.count("")
	wantOK(t, h.query("SELECT deviceId FROM devices"))
	r := h.query("SELECT deviceId FROM devices")
	if r.status != http.StatusTooManyRequests || r.header.Get("iothub-errorcode") != "ThrottlingException" {
		t.Fatalf("query over the limit: %d %s", r.status, r.body)
	}
	var outer map[string]string
	if err := json.Unmarshal(r.body, &outer); err != nil || !strings.Contains(outer["Message"], `"errorCode":429001`) ||
		!strings.Contains(outer["Message"], "queries are limited to 2 per minute") {
		t.Errorf("throttle body %s", r.body)
	}
	if got := r.header.Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After %q, want 30", got)
	}
	if r := h.do(http.MethodGet, "/jobs/v2/absent", ""); r.status != http.StatusNotFound {
		t.Errorf("jobs operations share the queries bucket: %d", r.status) // they have their own
	}
	h.clock.Advance(30 * time.Second)
	wantOK(t, h.query("SELECT deviceId FROM devices"))
}
