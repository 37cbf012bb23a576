package handlers

import (
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/rollout"
)

func TestWavePlanEstimatesJobsFromTheSampleIDLength(t *testing.T) {
	waves, err := rollout.ParseWaves("10,1%,100%")
	if err != nil {
		t.Fatal(err)
	}
	guid := strings.Repeat("x", 36)
	pl, exact := wavePlan("abc", waves, 100_000, []string{guid, guid}, false)
	if exact || pl == nil {
		t.Fatalf("a fleet beyond one page must be estimated, got exact=%v plan=%v", exact, pl)
	}
	// 36-character ids fit 209 per IN-list job, as the planner packs them.
	want := []struct{ size, jobs int }{{10, 1}, {990, 5}, {99_000, 474}}
	for i, w := range pl.Waves {
		if w.Size != want[i].size || len(w.Jobs) != want[i].jobs || len(w.Jobs[0].Devices) != min(w.Size, 209) {
			t.Errorf("wave %d: %d devices in %d jobs (first %d), want %d in %d", w.Number, w.Size, len(w.Jobs), len(w.Jobs[0].Devices), want[i].size, want[i].jobs)
		}
	}
	// The same fleet planned exactly agrees on the job count.
	ids := make([]string, 2000)
	for i := range ids {
		ids[i] = guid[:30] + strings.Repeat("0", 6-len(itoa(i))) + itoa(i)
	}
	exactPlan, ok := wavePlan("abc", waves, len(ids), ids, true)
	estimate, _ := wavePlan("abc", waves, len(ids), ids[:100], false)
	if !ok || exactPlan.Jobs() != estimate.Jobs() {
		t.Errorf("exact plan %d jobs, estimate %d", exactPlan.Jobs(), estimate.Jobs())
	}
	one, ok := wavePlan("abc", rollout.WaveSpec{}, 5, nil, false)
	if !ok || one.Jobs() != 1 || one.Waves[0].Jobs[0].ID != "hj-abc-w1-1" {
		t.Errorf("one wave: %+v", one)
	}
}

func TestInConditionQuotesAndRefusesWhatDoesNotFit(t *testing.T) {
	cond, why := inCondition([]string{`o'brien`, `back\slash`})
	if why != "" || cond != `deviceId IN ['o\'brien','back\\slash']` {
		t.Errorf("condition %q (%s)", cond, why)
	}
	many := make([]string, 300)
	for i := range many {
		many[i] = strings.Repeat("d", 30) + itoa(i)
	}
	if cond, why := inCondition(many); cond != "" || !strings.Contains(why, "do not fit in one hub condition") {
		t.Errorf("300 long ids: %q / %q", clipText(cond), why)
	}
	if _, why := inCondition(nil); !strings.Contains(why, "no device failed") {
		t.Errorf("no ids: %q", why)
	}
}

func clipText(s string) string { return s[:min(len(s), 40)] }
