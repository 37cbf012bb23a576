package hub_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
)

// The device-query half of the client against the simulator: the simulator
// lexes string literals exactly as the docs define them (\' and \\, no SQL
// doubling), so these tests fail if QuoteString or a condition built with
// it ever drifts from the documented escapes.

// quotedFleet holds ids and tag values with the characters that need
// escaping: single quotes in ids (the documented id set allows them) and
// backslashes in tag values (ids may not hold one).
var quotedFleet = []hubsim.Device{
	{DeviceID: "o'brien", Tags: map[string]any{"path": `C:\fw\new`}},
	{DeviceID: "it's", Tags: map[string]any{"path": `it\'s`}}, // a backslash before a quote
	{DeviceID: "''", Tags: map[string]any{"path": `\\`}},
	{DeviceID: "plain", Tags: map[string]any{"path": `'`}, Behaviour: hubsim.BehaviourUnhealthy},
	{DeviceID: "a'b'c", Behaviour: hubsim.BehaviourFail},
}

// allIDs walks every DeviceIDs page of where.
func allIDs(t testing.TB, c *hub.Client, where string, pageSize int) (ids []string, pages int) {
	t.Helper()
	cont := ""
	for {
		page, err := c.DeviceIDs(context.Background(), where, hub.PageOptions{PageSize: pageSize, Continuation: cont})
		if err != nil {
			t.Fatalf("DeviceIDs(%q) page %d: %v", where, pages, err)
		}
		pages++
		ids = append(ids, page.DeviceIDs...)
		if cont = page.Continuation; cont == "" {
			return ids, pages
		}
	}
}

func TestSimDeviceQueriesTakeQuotedIDs(t *testing.T) {
	s := newSimHub(t, hubsim.Options{Registry: quotedFleet})
	c := s.client(t)
	ctx := context.Background()

	var quoted []string
	for _, d := range quotedFleet {
		quoted = append(quoted, hub.QuoteString(d.DeviceID))
		where := "deviceId = " + hub.QuoteString(d.DeviceID)
		if n, err := c.CountDevices(ctx, where); err != nil || n != 1 {
			t.Errorf("CountDevices(%s) = %d, %v; want 1", where, n, err)
		}
		if ids, _ := allIDs(t, c, where, 0); !slices.Equal(ids, []string{d.DeviceID}) {
			t.Errorf("DeviceIDs(%s) = %q, want [%q]", where, ids, d.DeviceID)
		}
		if path, ok := d.Tags["path"].(string); ok {
			where := "tags.path = " + hub.QuoteString(path)
			if ids, _ := allIDs(t, c, where, 0); !slices.Equal(ids, []string{d.DeviceID}) {
				t.Errorf("DeviceIDs(%s) = %q, want [%q]", where, ids, d.DeviceID)
			}
		}
	}
	in := "deviceId IN [" + strings.Join(quoted, ", ") + "]"
	if n, err := c.CountDevices(ctx, in); err != nil || n != int64(len(quotedFleet)) {
		t.Errorf("CountDevices(%s) = %d, %v; want %d", in, n, err, len(quotedFleet))
	}

	// The SQL doubling the docs do not define is refused, not silently read.
	_, err := c.CountDevices(ctx, "deviceId = 'o''brien'")
	var he *hub.Error
	if !errors.Is(err, hub.ErrQueryRefused) || !errors.As(err, &he) || he.Code != "ArgumentInvalid" {
		t.Errorf("CountDevices with SQL doubling: %v, want the hub's ArgumentInvalid as ErrQueryRefused", err)
	}

	page, err := c.QueryDevices(ctx, "SELECT * FROM devices WHERE STARTSWITH(tags.path, "+hub.QuoteString(`C:\`)+")", hub.PageOptions{})
	if err != nil || len(page.Twins) != 1 || page.Twins[0].DeviceID != "o'brien" || page.Twins[0].Tags["path"] != `C:\fw\new` {
		t.Errorf("QueryDevices STARTSWITH: %+v, %v", page, err)
	}
}

func TestSimDeviceIDsAndCountAgree(t *testing.T) {
	s := newSimHub(t, hubsim.Options{Devices: 250, Seed: 3})
	c := s.client(t)
	ctx := context.Background()

	for _, where := range []string{"*", "", "tags.ring = 'canary'", "tags.site IN ['paris', 'lyon'] AND NOT tags.ring = 'broad'", "deviceId = 'nope'"} {
		n, err := c.CountDevices(ctx, where)
		if err != nil {
			t.Fatalf("CountDevices(%q): %v", where, err)
		}
		ids, pages := allIDs(t, c, where, 40)
		if int64(len(ids)) != n || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
			t.Errorf("%q: COUNT %d but %d ids over %d pages (distinct: %v)", where, n, len(ids), pages, len(slices.Compact(slices.Sorted(slices.Values(ids)))) == len(ids))
		}
		if want := max(1, (len(ids)+39)/40); pages != want {
			t.Errorf("%q: %d ids by 40 took %d pages, want %d", where, len(ids), pages, want)
		}
	}
	if ids, _ := allIDs(t, c, "*", 0); len(ids) != 250 {
		t.Errorf("every device through the default page size: %d", len(ids))
	}
}

func TestSimQueryDevicesPagesTwins(t *testing.T) {
	s := newSimHub(t, hubsim.Options{Registry: quotedFleet})
	c := s.client(t)
	ctx := context.Background()
	var twins []hub.DeviceTwin
	cont, pages := "", 0
	for {
		page, err := c.QueryDevices(ctx, "SELECT * FROM devices WHERE IS_DEFINED(tags.path)", hub.PageOptions{PageSize: 3, Continuation: cont})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		twins = append(twins, page.Twins...)
		if cont = page.Continuation; cont == "" {
			break
		}
	}
	if pages != 2 || len(twins) != 4 {
		t.Fatalf("%d pages, %d twins; want 2 and 4", pages, len(twins))
	}
	for i, tw := range twins {
		if tw.DeviceID != quotedFleet[i].DeviceID || tw.Tags["path"] != quotedFleet[i].Tags["path"] || tw.Version < 1 || tw.ETag == "" {
			t.Errorf("twin %d: %+v, want %s with its tags", i, tw, quotedFleet[i].DeviceID)
		}
	}
}

// A job whose condition lists quoted ids reaches exactly those devices, the
// twin update lands on the ones it succeeded on, and the devices.jobs
// query of the job (ids are [A-Za-z0-9_-], so its own quoting is trivial)
// lists them.
func TestSimJobConditionWithQuotedIDs(t *testing.T) {
	s := newSimHub(t, hubsim.Options{Registry: quotedFleet, DeviceRate: 10})
	c := s.client(t)
	ctx := context.Background()
	targets := []string{"o'brien", "''", "plain", "a'b'c"}
	var quoted []string
	for _, id := range targets {
		quoted = append(quoted, hub.QuoteString(id))
	}
	job := twinJob("quoted-ids")
	job.QueryCondition = "deviceId IN [" + strings.Join(quoted, ",") + "]"
	if _, err := c.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(time.Minute)
	done, err := c.GetJob(ctx, "quoted-ids")
	if err != nil || done.Status != hub.StatusCompleted {
		t.Fatalf("GetJob = %+v, %v; want completed (1 of 4 fails)", done, err)
	}
	page, err := c.QueryDeviceJobs(ctx, "quoted-ids", hub.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]hub.DeviceJobStatus{}
	for _, d := range page.Devices {
		got[d.DeviceID] = d.Status
	}
	want := map[string]hub.DeviceJobStatus{"o'brien": hub.DeviceStatusCompleted, "''": hub.DeviceStatusCompleted,
		"plain": hub.DeviceStatusCompleted, "a'b'c": hub.DeviceStatusFailed}
	if len(got) != len(want) {
		t.Errorf("devices.jobs rows %v, want %v", got, want)
	}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("%s: %q, want %q", id, got[id], st)
		}
	}
	n, err := c.CountDevices(ctx, "tags.ring = '2' AND properties.desired.interval = 60")
	if err != nil || n != 3 {
		t.Errorf("twins updated by the job: %d, %v; want the 3 it succeeded on", n, err)
	}
	unhealthy, err := c.DeviceIDs(ctx, "properties.reported.health = 'error'", hub.PageOptions{})
	if err != nil || !slices.Equal(unhealthy.DeviceIDs, []string{"plain"}) {
		t.Errorf("unhealthy devices after the job: %+v, %v", unhealthy, err)
	}
}

func TestSimDeviceQueryLimits(t *testing.T) {
	s := newSimHub(t, hubsim.Options{Registry: quotedFleet, QueriesPerMinute: 6})
	c := s.client(t)
	ctx := context.Background()

	before := s.sim.Calls(hubsim.OpQueryDevices)
	_, err := c.CountDevices(ctx, "deviceId = '"+strings.Repeat("x", hub.MaxQueryLength)+"'")
	if !errors.Is(err, hub.ErrQueryTooLong) || s.sim.Calls(hubsim.OpQueryDevices) != before {
		t.Errorf("an over-long condition: %v after %d calls; want ErrQueryTooLong and nothing sent", err, s.sim.Calls(hubsim.OpQueryDevices)-before)
	}

	// Over the queries budget the hub answers 429 with a Retry-After (10 s
	// at 6 a minute, inside the client's call budget); the client waits, on
	// the simulator's clock, and the count still arrives.
	for i := range 10 {
		if n, err := c.CountDevices(ctx, "*"); err != nil || n != int64(len(quotedFleet)) {
			t.Fatalf("CountDevices #%d over a budget of 6 a minute: %d, %v", i, n, err)
		}
	}
	if calls := s.sim.Calls(hubsim.OpQueryDevices) - before; calls <= 10 {
		t.Errorf("10 counts over a budget of 6 a minute took %d requests; the hub never throttled", calls)
	}
}

// BenchmarkClientCountAndPage100k: what the plan's COUNT and a full
// SELECT deviceId walk cost through the real client over 100,000
// simulated devices (loopback HTTP, pages of 100, the simulator's cap).
func BenchmarkClientCountAndPage100k(b *testing.B) {
	s := newSimHub(b, hubsim.Options{Devices: 100_000, Seed: 1})
	c := s.client(b)
	ctx := context.Background()
	const where = "tags.ring = 'early' AND tags.site IN ['paris', 'lyon', 'berlin']"
	var countSpent, walkSpent time.Duration
	var ids int
	for b.Loop() {
		start := time.Now()
		n, err := c.CountDevices(ctx, where)
		if err != nil || n == 0 {
			b.Fatalf("CountDevices = %d, %v", n, err)
		}
		countSpent += time.Since(start)

		start = time.Now()
		all, pages := allIDs(b, c, "*", 100)
		walkSpent += time.Since(start)
		if len(all) != 100_000 || pages != 1000 {
			b.Fatalf("walk: %d ids over %d pages", len(all), pages)
		}
		ids = len(all)
	}
	b.ReportMetric(float64(countSpent.Microseconds())/1000/float64(b.N), "ms/count")
	b.ReportMetric(float64(walkSpent.Microseconds())/1000/float64(b.N), "ms/walk")
	b.ReportMetric(float64(walkSpent.Microseconds())/float64(b.N)/float64(ids)*1000, "ns/id")
}
