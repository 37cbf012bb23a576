package views_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hubjobs/hubjobs/views"
)

func activeJob(hub, id, status string, started time.Time) views.ActiveJob {
	return views.ActiveJob{JobRow: views.JobRow{Hub: hub, ID: id, Type: "scheduleDeviceMethod", Status: status, Started: started,
		TypeLabel: "Direct method", StatusLabel: strings.ToUpper(status[:1]) + status[1:]}}
}

func TestActiveAcrossOrdersRunningThenScheduledByStartThenQueued(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	hubs := []views.HubSummary{
		{Name: "prod", Active: []views.ActiveJob{
			activeJob("prod", "q-unknown-start", "queued", time.Time{}),
			activeJob("prod", "s-late", "scheduled", t0.Add(2*time.Hour)),
			activeJob("prod", "r-b", "running", t0),
			activeJob("prod", "e-early", "enqueued", t0.Add(-time.Hour)),
		}},
		{Name: "eu", Reachable: false},
		{Name: "asia", Active: []views.ActiveJob{
			activeJob("asia", "s-soon", "scheduled", t0.Add(time.Hour)),
			activeJob("asia", "r-a", "running", t0),
			activeJob("asia", "r-earlier", "running", t0.Add(-time.Minute)),
		}},
	}
	var got []string
	for _, j := range views.ActiveAcross(hubs) {
		got = append(got, j.Hub+"/"+j.ID)
	}
	want := []string{
		"asia/r-earlier", "asia/r-a", "prod/r-b", // running: by start, then hub
		"asia/s-soon", "prod/s-late", // scheduled: by start
		"prod/e-early", "prod/q-unknown-start", // waiting: unknown start last
	}
	if !slices.Equal(got, want) {
		t.Errorf("order %q\nwant  %q", got, want)
	}
	if got := views.ActiveAcross(nil); len(got) != 0 {
		t.Errorf("no hubs: %v", got)
	}
}

func TestActiveJobsSection(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	running := activeJob("prod", "r-1", "running", t0)
	running.Method, running.StopsBy = "reboot", t0.Add(time.Hour)
	running.Stats = &views.Stats{Devices: 200, Succeeded: 90, Failed: 10, Running: 20, Pending: 80}
	scheduled := activeJob("prod", "s-1", "scheduled", t0.Add(time.Hour))
	scheduled.Type, scheduled.TypeLabel = "scheduleUpdateTwin", "Twin update"

	for _, tc := range []struct {
		name  string
		hubs  []views.HubSummary
		rows  int
		empty string // the empty-state sentence, "" when rows are listed
		notes []string
	}{
		{name: "jobs on two hubs, one partly read, one stale",
			hubs: []views.HubSummary{
				{Name: "prod", Reachable: true, ActiveJobs: 2, ActiveAtLeast: true, Active: []views.ActiveJob{running, scheduled}},
				{Name: "eu", Reachable: true, Freshness: views.Age{Stale: true, Age: 40 * time.Second, Why: "IoT Hub is limiting requests"},
					Active: []views.ActiveJob{activeJob("eu", "q-1", "queued", time.Time{})}},
			},
			rows: 3, notes: []string{"prod has more jobs than the portal reads at once: it has at least 2 active", "The jobs of eu are from 40 s ago: IoT Hub is limiting requests."}},
		{name: "nothing active anywhere",
			hubs:  []views.HubSummary{{Name: "prod", Reachable: true}, {Name: "eu", Reachable: true}},
			empty: "No job is queued, scheduled or running on any hub."},
		{name: "nothing active on the hubs that answered",
			hubs:  []views.HubSummary{{Name: "prod", Reachable: true}, {Name: "eu", Problem: "IoT Hub could not be reached."}},
			empty: "No job is queued, scheduled or running on the hubs that could be read.",
			notes: []string{"eu could not be read, so its jobs are missing from this list: IoT Hub could not be reached."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := render(t, views.ActiveJobsSection(tc.hubs))
			sec := d.Find("section#active-jobs")
			if n := sec.Find("#active-list tbody tr").Length(); n != tc.rows {
				t.Errorf("%d rows, want %d", n, tc.rows)
			}
			_, polling := sec.Attr("hx-get")
			if polling != (tc.rows > 0) {
				t.Errorf("polling %v with %d rows", polling, tc.rows)
			}
			if got := strings.TrimSpace(d.Find("#no-active-jobs").Text()); got != tc.empty {
				t.Errorf("empty state %q, want %q", got, tc.empty)
			}
			text := strings.Join(strings.Fields(sec.Find(".alert").Text()), " ")
			for _, n := range tc.notes {
				if !strings.Contains(text, n) {
					t.Errorf("notes %q lack %q", text, n)
				}
			}
		})
	}

	d := render(t, views.ActiveJobsSection([]views.HubSummary{{Name: "prod", Reachable: true, Active: []views.ActiveJob{scheduled, running}}}))
	r := d.Find(`tr[data-job-id="r-1"]`)
	if got := strings.Join(strings.Fields(r.Find("td.job-cell .muted").Text()), " "); got != "Direct method · reboot" {
		t.Errorf("type cell %q", got)
	}
	if r.Find(`.badge[data-status="running"]`).Length() != 1 || r.Find("svg.bar rect").Length() == 0 {
		t.Error("the running row lacks the shared status badge or progress bar")
	}
	if !strings.Contains(r.Find("td.progress-cell").Text(), "100 / 200 (50 %)") || !strings.Contains(r.Find(".t-failed").Text(), "10 failed") {
		t.Errorf("progress text %q", r.Find("td.progress-cell").Text())
	}
	times := r.Find("time")
	if times.Length() != 2 || times.Last().AttrOr("datetime", "") != "2026-03-10T13:00:00Z" || times.Last().AttrOr("title", "") != "2026-03-10 13:00:00 UTC" {
		t.Errorf("running row times: %d, stops by %q", times.Length(), times.Last().AttrOr("datetime", ""))
	}
	s := d.Find(`tr[data-job-id="s-1"]`)
	if s.Find("time").Length() != 1 || !strings.Contains(s.Text(), "Starts") || !strings.Contains(s.Text(), "Twin update") {
		t.Errorf("scheduled row: %q (one start time, no stop)", s.Text())
	}
	if d.Find("tbody tr").First().AttrOr("data-job-id", "") != "r-1" {
		t.Error("the running job is not first")
	}
}

// Hostile ids, hub names and problems stay text; every link is one escaped
// path segment per value.
func TestActiveJobsSectionRendersHostileDataInert(t *testing.T) {
	for _, h := range hostile {
		t.Run(h, func(t *testing.T) {
			j := activeJob("prod", h, "running", time.Now())
			j.Method = h
			d := render(t, views.HubsPage(layout(), []views.HubSummary{
				{Name: "prod", Reachable: true, ActiveJobs: 1, Active: []views.ActiveJob{j}},
				{Name: "eu", Problem: h},
			}))
			assertInert(t, d)
			var hrefs []string
			d.Find("#active-list a").Each(func(_ int, s *goquery.Selection) { hrefs = append(hrefs, s.AttrOr("href", "")) })
			if want := []string{views.JobsURL("prod"), views.JobURL("prod", h)}; !slices.Equal(hrefs, want) {
				t.Errorf("links %q, want %q", hrefs, want)
			}
		})
	}
}
