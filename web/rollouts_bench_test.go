package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkPlanFragment is the plan fragment of a one-wave job through the
// whole portal (router, middleware, session, author check, form parsing,
// validation, plan, ETA, worst case, templ), over loopback HTTP, with the
// hub's COUNT and id sample answered from the budget's cache: the design's
// budget is 50 ms plus the hub's COUNT.
func BenchmarkPlanFragment(b *testing.B) {
	p, _ := newRolloutPortal(b, func(o *portalOptions) { o.budgetTTL = time.Hour; o.quietLogs = true })
	a := p.as(authorU)
	form := jobForm("benchplan")
	form.Set("condition", "tags.ring = 'broad'")
	if r := p.plan(a, form); r.StatusCode != http.StatusOK {
		b.Fatalf("plan = %d", r.StatusCode)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := p.planNow(a, form); r.StatusCode != http.StatusOK || !strings.Contains(r.body, `data-devices="9"`) {
			b.Fatalf("plan = %d without the cached count\n%s", r.StatusCode, r.body)
		}
	}
}
