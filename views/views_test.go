package views_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"github.com/hubjobs/hubjobs/views"
)

// hostile is what an attacker can put in a job id (via another tool on the
// hub), a device id, or a hub error message.
var hostile = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(1)>`,
	`javascript:alert(1)`,
	`{{7*7}} ${7*7}`,
	`../../devices/x?y=1#z`,
}

func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(templ.WithNonce(context.Background(), "n0nce"), &buf); err != nil {
		t.Fatal(err)
	}
	d, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func layout() views.Layout {
	return views.Layout{Title: "t", User: &views.User{Name: "Otto", Roles: []string{"operator"}}, Hubs: []string{"prod"},
		CSRFToken: `tok"en<`, Assets: views.Assets{CSS: "/static/a.css", HTMX: "/static/h.js", JS: "/static/a.js"}}
}

// assertInert fails if d contains any element or attribute the hostile
// input could have created.
func assertInert(t *testing.T, d *goquery.Document) {
	t.Helper()
	if n := d.Find("img").Length(); n != 0 {
		t.Errorf("%d injected <img> elements", n)
	}
	d.Find("script").Each(func(_ int, s *goquery.Selection) {
		if src, ok := s.Attr("src"); !ok || !strings.HasPrefix(src, "/static/") || strings.TrimSpace(s.Text()) != "" {
			t.Errorf("unexpected script: %s", goquery.NodeName(s))
		}
	})
	d.Find("*").Each(func(_ int, s *goquery.Selection) {
		for _, a := range s.Nodes[0].Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("injected event handler %s=%q", a.Key, a.Val)
			}
			if (a.Key == "href" || a.Key == "hx-get" || a.Key == "hx-post" || a.Key == "action" || a.Key == "src") &&
				(strings.HasPrefix(strings.ToLower(a.Val), "javascript:") || strings.Contains(a.Val, "<") || strings.Contains(a.Val, `"`)) {
				t.Errorf("unsafe URL attribute %s=%q", a.Key, a.Val)
			}
		}
	})
}

func TestHostileDataIsRenderedInert(t *testing.T) {
	for _, h := range hostile {
		t.Run(h, func(t *testing.T) {
			job := views.Job{Hub: "prod", ID: h, Type: h, Status: h, Query: h, FailureReason: h, StatusMessage: h,
				Method: &views.Method{Name: h, Payload: h}, Twin: &views.Twin{Tags: h, Desired: h},
				Stats: &views.Stats{Devices: 2000, Running: 5}, Started: time.Now(), MaxExecution: time.Hour, PlannedStop: time.Now()}
			page := views.JobPage{Job: job, Cancel: views.CancelControl{Allowed: true, ConfirmRequired: true, MaxReason: 500, CSRFToken: h},
				History: []views.AuditEntry{{Action: h, Actor: h, Reason: h, HubErrorCode: h, HubTrackingID: h},
					{Action: "job.cancel.succeeded", Actor: h, Reason: h, RequestID: h}},
				Banner: &views.Banner{Kind: h, Title: h, Detail: h}}
			job.Cancellable = true
			page.Job = job
			d := render(t, views.JobFullPage(layout(), page))
			assertInert(t, d)
			if got := d.Find("#job-id").Text(); got != h {
				t.Errorf("job id shown as %q, want the text %q", got, h)
			}
			if v, _ := d.Find("#cancel-confirm").Attr("data-must-equal"); v != h {
				t.Errorf("confirm value %q", v)
			}
			href, _ := d.Find("#job .breadcrumb a").Attr("href")
			if href != "/hubs/prod/jobs" {
				t.Errorf("breadcrumb %q", href)
			}
			post, _ := d.Find("#cancel-form").Attr("hx-post")
			if strings.Count(post, "/") != 5 || !strings.HasSuffix(post, "/cancel") {
				t.Errorf("cancel URL %q: the id must be one escaped path segment", post)
			}
			if cls, _ := d.Find("#status-badge .badge").Attr("class"); cls != "badge s-unknown" {
				t.Errorf("hub status became a class name: %q", cls)
			}

			list := render(t, views.JobsPage(layout(), views.JobList{Hub: "prod", Filter: views.JobFilter{Q: h},
				Page: h, NextPage: h, Poll: true, Rows: []views.JobRow{{Hub: "prod", ID: h, Type: h, Status: h}}}))
			assertInert(t, list)
			if v, _ := list.Find("#f-q").Attr("value"); v != h {
				t.Errorf("search box value %q", v)
			}

			dev := render(t, views.DevicesFullPage(layout(), views.DevicePage{Hub: "prod", JobID: h, Total: 1, PageSize: 50, Status: h, Matching: 1,
				Counts:  map[string]int{"failed": 1, h: 1},
				Devices: []views.Device{{ID: h, Status: h, ErrorCode: h, ErrorDescription: h, HasResponse: true, ResponsePayload: h}}, FailedIDs: []string{h}}))
			assertInert(t, dev)
			if v, _ := dev.Find("#copy-failed").Attr("data-copy"); v != h {
				t.Errorf("copy-failed value %q", v)
			}

			errp := render(t, views.ErrorFullPage(layout(), views.ErrorPage{Status: 502, Title: h, Detail: h, HubCode: h, TrackID: h, RequestID: h}))
			assertInert(t, errp)
			aud := render(t, views.AuditFullPage(layout(), views.AuditPage{Filter: views.AuditFilter{User: h, Job: h},
				Entries: []views.AuditEntry{{Hub: "prod", JobID: h, Actor: h, ActorID: h, Result: h, ClientIP: h, RequestID: h, HubErrorCode: h}}}))
			assertInert(t, aud)
		})
	}
}

func TestURLsEscapeEachSegment(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{views.JobURL("prod", "a/b?c#d"), "/hubs/prod/jobs/a%2Fb%3Fc%23d"},
		{views.JobStatusURL("prod", "x y"), "/hubs/prod/jobs/x%20y/status"},
		{views.JobsQueryURL("prod", views.JobFilter{Status: "running", Q: "a&b"}, "tok=en&x"), "/hubs/prod/jobs?page=tok%3Den%26x&q=a%26b&status=running"},
		{views.JobDevicesURL("prod", "j", 50), "/hubs/prod/jobs/j/devices?offset=50"},
		{views.AuditURL(views.AuditFilter{User: "o&p"}, 7), "/audit?before=7&user=o%26p"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestLayoutCarriesCSRFAndHardenedHTMX(t *testing.T) {
	d := render(t, views.HubsPage(layout(), nil))
	if v, _ := d.Find(`meta[name="csrf-token"]`).Attr("content"); v != `tok"en<` {
		t.Errorf("csrf meta %q", v)
	}
	if v, _ := d.Find("body").Attr("hx-headers"); v != `{"X-CSRF-Token":"tok\"en\u003c"}` {
		t.Errorf("hx-headers %q: want JSON from json.Marshal", v)
	}
	cfg, _ := d.Find(`meta[name="htmx-config"]`).Attr("content")
	for _, want := range []string{`"allowEval":false`, `"historyCacheSize":0`, `"selfRequestsOnly":true`, `"target":"#alerts"`, `"includeIndicatorStyles":false`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("htmx config lacks %s", want)
		}
	}
	d.Find("script").Each(func(_ int, s *goquery.Selection) {
		if n, _ := s.Attr("nonce"); n != "n0nce" {
			t.Errorf("script without the response nonce")
		}
	})
	if d.Find("#alerts[aria-live]").Length() != 1 || d.Find(`a.skip[href="#main"]`).Length() != 1 || d.Find("#sign-out").Length() != 1 {
		t.Error("layout lacks the alert region, skip link or sign-out")
	}
	// Every form control has a label.
	page := render(t, views.JobsPage(layout(), views.JobList{Hub: "prod", Types: []views.Option{{}}, Statuses: []views.Option{{}}}))
	page.Find("input:not([type=hidden]), select, textarea").Each(func(_ int, s *goquery.Selection) {
		id, _ := s.Attr("id")
		if id == "" || page.Find(`label[for="`+id+`"]`).Length() != 1 {
			t.Errorf("control %q has no label", id)
		}
	})
}

func TestProgressBarIsOneStackedSVG(t *testing.T) {
	d := render(t, views.ProgressBar(views.Stats{Devices: 100, Succeeded: 50, Failed: 10, Running: 15, Pending: 25}, ""))
	var widths []string
	d.Find("rect").Each(func(_ int, s *goquery.Selection) { w, _ := s.Attr("width"); widths = append(widths, w) })
	if strings.Join(widths, ",") != "500,100,150,250" {
		t.Errorf("segments %v, want 500,100,150,250", widths)
	}
	if l, _ := d.Find("svg").Attr("aria-label"); l != "50 succeeded, 10 failed, 15 running, 25 pending of 100 devices" {
		t.Errorf("aria-label %q", l)
	}
	if d.Find("[style]").Length() != 0 {
		t.Error("inline style (forbidden by the CSP)")
	}
}

// No template may bypass templ's escaping or URL sanitising.
func TestNoRawOrSafeURLInTemplates(t *testing.T) {
	files, _ := filepath.Glob("*.templ")
	if len(files) == 0 {
		t.Fatal("no templates found")
	}
	banned := regexp.MustCompile(`templ\.(Raw|SafeURL|SafeCSS|JSUnsafeFuncCall)\b|@templ\.Raw`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := banned.Find(b); m != nil {
			t.Errorf("%s uses %s", f, m)
		}
	}
}
