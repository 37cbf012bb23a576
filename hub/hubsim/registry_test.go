package hubsim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLoadRegistry(t *testing.T) {
	devices, err := LoadRegistry(strings.NewReader(`[
		{"deviceId":"a", "tags":{"site":"paris","floor":3}, "reported":{"fw":"1.0"}, "behaviour":"ok"},
		{"deviceId":"b'c", "behaviour":"fail"},
		{"deviceId":"d", "behaviour":"unhealthy"},
		{"deviceId":"e"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(devices) != 4 || devices[0].Tags["floor"] != 3.0 || devices[1].Behaviour != BehaviourFail || devices[3].Behaviour != "" {
		t.Errorf("loaded %+v", devices)
	}
	refused := []struct{ file, want string }{
		{``, "want a JSON array"},
		{`{}`, "want a JSON array"},
		{`[]`, "no devices"},
		{`[{"deviceId":"a","behavior":"fail"}]`, `unknown field "behavior"`},
		{`[{"deviceId":"a","behaviour":"flaky"}]`, `device 1 ("a"): unknown behaviour "flaky" (want ok, fail or unhealthy)`},
		{`[{"deviceId":"a"},{"deviceId":"b"},{"deviceId":"a"}]`, `device 3 ("a"): duplicate deviceId, first used by device 1`},
		{`[{"deviceId":""}]`, "1 to 128 characters"},
		{`[{"deviceId":"a b"}]`, `deviceId has the character ' '`},
		{`[{"deviceId":"a#b"}]`, `deviceId has the character '#'`},
		{`[{"deviceId":"` + strings.Repeat("x", 129) + `"}]`, "1 to 128 characters"},
		{`[{"deviceId":"a","tags":{"a.b":1}}]`, `invalid property name "a.b"`},
		{`[{"deviceId":"a","reported":{"$version":1}}]`, `invalid property name "$version"`},
		{`[{"deviceId":"a","tags":"x"}]`, "want a JSON array"},
		{`[{"deviceId":"a"}] []`, "data after the JSON array"},
	}
	for _, tt := range refused {
		_, err := LoadRegistry(strings.NewReader(tt.file))
		if !errors.Is(err, ErrInvalidRegistry) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadRegistry(%.40q) = %v, want %q", tt.file, err, tt.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted a registry with duplicate ids")
		}
	}()
	New(Options{Registry: []Device{{DeviceID: "a"}, {DeviceID: "a"}}})
}

// twin reads one device's twin through SELECT *.
func (h *harness) twin(id string) map[string]any {
	h.t.Helper()
	r := h.query("SELECT * FROM devices WHERE deviceId = " + sqlQuote(id))
	wantOK(h.t, r)
	twins := r.array(h.t)
	if len(twins) != 1 {
		h.t.Fatalf("twin %s: %s", id, r.body)
	}
	return twins[0]
}

func section(twin map[string]any, name string) map[string]any {
	return twin["properties"].(map[string]any)[name].(map[string]any)
}

func TestTwinUpdateJobsChangeTwins(t *testing.T) {
	h := newHarness(t, Options{DeviceRate: 100, Registry: []Device{
		{DeviceID: "a", Tags: map[string]any{"ring": "canary", "old": "x", "cfg": map[string]any{"keep": 1, "drop": 2}}},
		{DeviceID: "b", Tags: map[string]any{"ring": "canary"}},
		{DeviceID: "c", Tags: map[string]any{"ring": "broad"}},
		{DeviceID: "d'q", Tags: map[string]any{"ring": "canary"}, Behaviour: BehaviourFail},
	}})
	patch := `{"jobId":"t1","type":"scheduleUpdateTwin","queryCondition":"tags.ring = 'canary'","updateTwin":{"etag":"*",` +
		`"tags":{"ring":"early","old":null,"cfg":{"drop":null,"add":true}},"properties":{"desired":{"logLevel":"debug","nested":{"x":1}}}}}`
	h.create("t1", patch)
	if got := h.twin("a"); section(got, "desired")["logLevel"] != nil {
		t.Fatalf("twin changed before the job ran: %v", got)
	}
	h.clock.Advance(time.Minute)
	a := h.twin("a")
	tags := a["tags"].(map[string]any)
	if tags["ring"] != "early" || tags["old"] != nil || len(tags) != 2 {
		t.Errorf("merged tags %v", tags)
	}
	if cfg := tags["cfg"].(map[string]any); cfg["keep"] != 1.0 || cfg["add"] != true || len(cfg) != 2 {
		t.Errorf("merged nested tags %v", cfg)
	}
	desired := section(a, "desired")
	if desired["logLevel"] != "debug" || desired["$version"] != 2.0 {
		t.Errorf("desired %v", desired)
	}
	if section(a, "reported")["health"] != "ok" || a["version"].(float64) < 3 {
		t.Errorf("a reached device reports health ok and a new version: %v", a)
	}
	if c := h.twin("c"); c["tags"].(map[string]any)["ring"] != "broad" || c["version"] != 1.0 {
		t.Errorf("untargeted twin changed: %v", c)
	}
	if d := h.twin("d'q"); d["tags"].(map[string]any)["ring"] != "canary" || section(d, "reported")["health"] != nil {
		t.Errorf("a fail device's twin changed: %v", d)
	}
	// Queries and later jobs see the new twins.
	if got := h.count("tags.ring = 'early'"); got != 2 {
		t.Errorf("%d devices in ring early, want 2", got)
	}
	h.create("t2", strings.Replace(strings.Replace(patch, `"t1"`, `"t2"`, 1), "tags.ring = 'canary'", "tags.ring = 'early'", 1))
	if got := stats(t, h.get("t2"))["deviceCount"]; got != 2 {
		t.Errorf("second job targets %d devices, want 2", got)
	}
	h.clock.Advance(time.Minute)
	if got := section(h.twin("b"), "desired")["$version"]; got != 3.0 {
		t.Errorf("desired $version after two jobs %v, want 3", got)
	}
	// Merging the same nested object twice keeps one key.
	if n := section(h.twin("b"), "desired")["nested"].(map[string]any); len(n) != 1 {
		t.Errorf("nested desired %v", n)
	}
}

func TestDeviceBehaviours(t *testing.T) {
	h := newHarness(t, Options{DeviceRate: 100, Registry: []Device{
		{DeviceID: "ok1"}, {DeviceID: "bad", Behaviour: BehaviourFail}, {DeviceID: "sick", Behaviour: BehaviourUnhealthy}, {DeviceID: "ok2", Behaviour: BehaviourOK},
	}})
	h.create("m", methodJob("m", "*"))
	h.create("tw", twinJob("tw", "*"))
	h.clock.Advance(time.Minute)
	for _, id := range []string{"m", "tw"} {
		if st := stats(t, h.get(id)); st["succeededCount"] != 3 || st["failedCount"] != 1 {
			t.Errorf("job %s statistics %v", id, st)
		}
	}
	failed := h.deviceRecords("m", "failed")
	if len(failed) != 1 || failed[0]["deviceId"] != "bad" ||
		failed[0]["outcome"].(map[string]any)["deviceMethodResponse"].(map[string]any)["status"] != 500.0 {
		t.Errorf("method job failures %v", failed)
	}
	failed = h.deviceRecords("tw", "failed")
	if len(failed) != 1 || failed[0]["deviceId"] != "bad" || failed[0]["error"].(map[string]any)["code"] != "JobRunPreconditionFailed" {
		t.Errorf("twin job failures %v", failed)
	}
	for id, want := range map[string]any{"ok1": "ok", "ok2": "ok", "sick": "error", "bad": nil} {
		if got := section(h.twin(id), "reported")["health"]; got != want {
			t.Errorf("%s reports health %v, want %v", id, got, want)
		}
	}
	if got := h.count("properties.reported.health = 'error'"); got != 1 {
		t.Errorf("%d unhealthy devices, want 1", got)
	}
	// A fail device fails even with no failure rate, and an unhealthy one
	// succeeds even with a failure rate of 1.
	h2 := newHarness(t, Options{DeviceRate: 100, FailureRate: 1, Registry: []Device{{DeviceID: "sick", Behaviour: BehaviourUnhealthy}, {DeviceID: "ok"}}})
	h2.create("m", methodJob("m", "*"))
	h2.clock.Advance(time.Minute)
	if st := stats(t, h2.get("m")); st["succeededCount"] != 1 || st["failedCount"] != 1 {
		t.Errorf("failure rate 1: %v", st)
	}
}
