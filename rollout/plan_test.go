package rollout

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/hub"
)

func TestQuote(t *testing.T) {
	tests := map[string]string{
		"dev-1":     `'dev-1'`,
		"o'brien":   `'o\'brien'`,
		`back\sl`:   `'back\\sl'`,
		`\'`:        `'\\\''`,
		"(a),b=@$%": `'(a),b=@$%'`,
	}
	for in, want := range tests {
		if got := hub.QuoteString(in); got != want {
			t.Errorf("hub.QuoteString(%q) = %s, want %s", in, got, want)
		}
		if quotedLen(in) != len(want) {
			t.Errorf("quotedLen(%q) = %d, want %d", in, quotedLen(in), len(want))
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !ValidID(id) || len(id) != idLength || seen[id] {
			t.Fatalf("NewID() = %q: invalid, wrong length or repeated", id)
		}
		seen[id] = true
	}
	for id, want := range map[string]bool{"a": true, "0123456789abcdef": true, "": false, "0123456789abcdefg": false, "Abc": false, "a-b": false} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v", id, !want)
		}
	}
}

func TestNewPlanSmall(t *testing.T) {
	spec, _ := ParseWaves("2,50%")
	p, err := NewPlan("r1", "", []string{"a", "b", "c", "d", "e", "a", "o'x"}, spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.Devices != 6 || len(p.Waves) != 3 || p.Jobs() != 3 {
		t.Fatalf("plan: %d devices, %d waves, %d jobs; want 6, 3, 3", p.Devices, len(p.Waves), p.Jobs())
	}
	want := []struct {
		size int
		step string
	}{{2, "2"}, {1, "50%"}, {3, "100%"}}
	for i, w := range p.Waves {
		if w.Size != want[i].size || w.Step != want[i].step || w.Number != i+1 {
			t.Errorf("wave %d = size %d step %q, want %d %q", i+1, w.Size, w.Step, want[i].size, want[i].step)
		}
		j := w.Jobs[0]
		if j.ID != fmt.Sprintf("hj-r1-w%d-1", i+1) || j.Condition != inList(w.Devices) {
			t.Errorf("wave %d job = %+v", i+1, j)
		}
	}
	if !strings.HasPrefix(p.Waves[0].Jobs[0].Condition, "deviceId IN ['") {
		t.Errorf("condition %q", p.Waves[0].Jobs[0].Condition)
	}
}

func TestNewPlanRefuses(t *testing.T) {
	tests := []struct {
		rid  string
		ids  []string
		want error
	}{
		{"R1", []string{"a"}, ErrInvalidID},
		{"r1", nil, ErrNoDevices},
		{"r1", []string{"a", ""}, ErrDeviceID},
		{"r1", []string{"line\nbreak"}, ErrDeviceID},
		{"r1", []string{strings.Repeat("x", 129)}, ErrDeviceID},
	}
	for _, tt := range tests {
		if _, err := NewPlan(tt.rid, "", tt.ids, WaveSpec{}); !errors.Is(err, tt.want) {
			t.Errorf("NewPlan(%q, %q) error = %v, want %v", tt.rid, tt.ids, err, tt.want)
		}
	}
}

func TestConditionPlan(t *testing.T) {
	p, err := NewConditionPlan("r2", "tags.env = 'prod'", 5000)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Waves) != 1 || p.Jobs() != 1 || p.Waves[0].Jobs[0].ID != "hj-r2-w1-1" || p.Waves[0].Jobs[0].Condition != "tags.env = 'prod'" {
		t.Fatalf("condition plan %+v", p.Waves)
	}
	if _, err := NewConditionPlan("r2", strings.Repeat("x", MaxCondition+1), 1); !errors.Is(err, ErrConditionTooLong) {
		t.Errorf("a too long condition: %v", err)
	}
	if _, err := NewConditionPlan("r2", "*", 0); !errors.Is(err, ErrNoDevices) {
		t.Errorf("no devices: %v", err)
	}
}

// guidIDs is n device ids shaped like the GUIDs SDKs use, from a seed.
func guidIDs(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, seed))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff)
	}
	return ids
}

func TestPlanSplitsAtTheLimit(t *testing.T) {
	ids := guidIDs(2000, 1)
	p, err := NewPlan("r3", "", ids, WaveSpec{})
	if err != nil {
		t.Fatal(err)
	}
	w := p.Waves[0]
	// A GUID is 38 characters quoted, 39 with its comma: 209 fill a job
	// to exactly 13 + 209·38 + 208 + 1 = 8,164 characters, the budget.
	if len(w.Jobs) != 10 || len(w.Jobs[0].Devices) != 209 || len(w.Jobs[0].Condition) != conditionBudget {
		t.Errorf("2000 GUIDs in %d jobs, the first of %d devices and %d characters; want 10, 209, %d",
			len(w.Jobs), len(w.Jobs[0].Devices), len(w.Jobs[0].Condition), conditionBudget)
	}
	for _, j := range w.Jobs[:len(w.Jobs)-1] {
		if len(j.Condition) > conditionBudget || len(j.Condition)+39 <= conditionBudget {
			t.Errorf("job %s is %d characters: not packed up to the %d budget", j.ID, len(j.Condition), conditionBudget)
		}
	}
}

func TestHealthQueries(t *testing.T) {
	spec, _ := ParseWaves("10,50%")
	p, err := NewPlan("r4", "", guidIDs(1000, 2), spec)
	if err != nil {
		t.Fatal(err)
	}
	health := "properties.reported.health = 'error'"
	qs, err := p.HealthQueries(health, 2)
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for _, q := range qs {
		if len(q) > MaxCondition || !strings.HasPrefix(q, countPrefix+"("+health+") AND deviceId IN [") {
			t.Errorf("health query of %d characters: %.120s", len(q), q)
		}
		named += strings.Count(q, "','") + 1
	}
	if named != 500 {
		t.Errorf("health queries name %d devices, want the 500 of waves 1 and 2", named)
	}
	cp, _ := NewConditionPlan("r5", "tags.x = 1", 10)
	qs, _ = cp.HealthQueries(health, 1)
	if want := countPrefix + "(" + health + ") AND (tags.x = 1)"; len(qs) != 1 || qs[0] != want {
		t.Errorf("condition plan health query %q, want %q", qs, want)
	}
	if _, err := p.HealthQueries(strings.Repeat("x", MaxCondition), 1); !errors.Is(err, ErrConditionTooLong) {
		t.Errorf("an oversized health query: %v", err)
	}
}

// checkPlan asserts every invariant of a plan over ids.
func checkPlan(t *testing.T, p *Plan, ids []string, spec WaveSpec) {
	t.Helper()
	unique := map[string]bool{}
	for _, id := range ids {
		unique[id] = true
	}
	if p.Devices != len(unique) {
		t.Fatalf("plan has %d devices, input has %d distinct", p.Devices, len(unique))
	}
	sizes, _ := spec.Sizes(len(unique))
	seen := map[string]bool{}
	jobIDs := map[string]bool{}
	for i, w := range p.Waves {
		if w.Size != sizes[i] || len(w.Devices) != w.Size {
			t.Fatalf("wave %d has %d devices (size %d), Sizes says %d", w.Number, len(w.Devices), w.Size, sizes[i])
		}
		var inJobs []string
		for k, j := range w.Jobs {
			if !hub.ValidJobID(j.ID) || jobIDs[j.ID] || j.ID != JobID(p.RolloutID, i+1, k+1) {
				t.Fatalf("job id %q invalid, repeated or not hj-{rid}-w{n}-{part}", j.ID)
			}
			jobIDs[j.ID] = true
			if len(j.Condition) > MaxCondition || j.Condition != inList(j.Devices) {
				t.Fatalf("job %s: condition of %d characters, or not the IN list of its devices", j.ID, len(j.Condition))
			}
			inJobs = append(inJobs, j.Devices...)
		}
		if !slices.Equal(inJobs, w.Devices) {
			t.Fatalf("wave %d's jobs do not name exactly its devices in order", w.Number)
		}
		for _, d := range w.Devices {
			if seen[d] || !unique[d] {
				t.Fatalf("device %q twice or not in the input", d)
			}
			seen[d] = true
		}
	}
	if len(seen) != len(unique) {
		t.Fatalf("waves cover %d of %d devices", len(seen), len(unique))
	}
}

func FuzzPlan(f *testing.F) {
	f.Add("10,25%,100%", uint64(1), 500, "abc", "x'y\\z")
	f.Add("1", uint64(2), 3000, "r", "")
	f.Add("50%", uint64(3), 1, "0123456789abcdef", "(a)")
	f.Fuzz(func(t *testing.T, specText string, seed uint64, n int, rid, extra string) {
		spec, err := ParseWaves(specText)
		if err != nil || !ValidID(rid) || rid == "zz" {
			return
		}
		n = 1 + abs(n)%4000
		ids := guidIDs(n, seed)
		if checkDeviceID(extra) == nil {
			ids = append(ids, extra, extra, ids[0]) // duplicates must vanish
		}
		p, err := NewPlan(rid, "", ids, spec)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, p, ids, spec)
		slices.Reverse(ids)
		again, _ := NewPlan(rid, "", ids, spec)
		if !samePlan(p, again) {
			t.Fatal("the same rollout id and devices gave a different plan")
		}
		if other, _ := NewPlan("zz", "", ids, spec); p.Devices > 20 && slices.Equal(other.Waves[0].Devices, p.Waves[0].Devices) && slices.Equal(order(other), order(p)) {
			t.Fatal("a different rollout id gave the same order")
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -(n + 1)
	}
	return n
}

func order(p *Plan) []string {
	var all []string
	for _, w := range p.Waves {
		all = append(all, w.Devices...)
	}
	return all
}

func samePlan(a, b *Plan) bool {
	if len(a.Waves) != len(b.Waves) {
		return false
	}
	for i := range a.Waves {
		if !slices.EqualFunc(a.Waves[i].Jobs, b.Waves[i].Jobs, func(x, y Job) bool { return x.ID == y.ID && x.Condition == y.Condition }) {
			return false
		}
	}
	return true
}

// TestOrderIsASample checks the first wave is not biased by how ids sort:
// with ids dev-00000…dev-09999, a 10 % wave drawn by sorted order would be
// all below dev-01000; a hash order spreads it over the whole range.
func TestOrderIsASample(t *testing.T) {
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("dev-%05d", i)
	}
	spec, _ := ParseWaves("10%")
	p, _ := NewPlan("r6", "", ids, spec)
	low := 0
	for _, d := range p.Waves[0].Devices {
		if d < "dev-05000" {
			low++
		}
	}
	if low < 400 || low > 600 { // binomial(1000, 0.5): ±6 σ
		t.Errorf("%d of the first wave's 1000 devices are in the lower half of ids, want about 500", low)
	}
}

func BenchmarkPlan100k(b *testing.B) {
	ids := guidIDs(100_000, 7)
	spec, _ := ParseWaves("10,1%,10%,50%,100%")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	peak := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		p, err := NewPlan("bench", "", ids, spec)
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		peak = max(peak, after.HeapInuse)
		if p.Devices != 100_000 {
			b.Fatal(p.Devices)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(before.HeapInuse)/(1<<20), "input-heap-MB")
}

// The secret changes the order; the same (id, secret) always gives the same
// one; an empty secret is the id alone, as rollouts stored before the
// secret existed were planned.
func TestPlanSecretKeysTheOrder(t *testing.T) {
	ids := guidIDs(200, 9)
	spec, _ := ParseWaves("20")
	a, _ := NewPlan("r9", "s1", ids, spec)
	again, _ := NewPlan("r9", "s1", ids, spec)
	b, _ := NewPlan("r9", "s2", ids, spec)
	if !samePlan(a, again) {
		t.Fatal("the same id and secret gave different plans")
	}
	if slices.Equal(order(a), order(b)) {
		t.Fatal("two secrets gave the same order")
	}
	byID, _ := hashOrder("r9", ids)
	plain, _ := NewPlan("r9", "", ids, spec)
	if !slices.Equal(order(plain), byID) {
		t.Fatal("an empty secret is not the id alone")
	}
	if jobs := a.Waves[0].Jobs; jobs[0].ID != "hj-r9-w1-1" {
		t.Fatalf("job id %s, want hj-r9-w1-1 whatever the secret", jobs[0].ID)
	}
}

// IDsPerJob, the estimate a plan makes before its device list is frozen,
// is what packing real ids of that length gives.
func TestIDsPerJobMatchesThePacking(t *testing.T) {
	for _, length := range []int{8, 36, 128} {
		ids := make([]string, 2000)
		for i := range ids {
			ids[i] = fmt.Sprintf("%0*d", length, i)
		}
		if got, want := IDsPerJob(length), len(packIN(ids, 0)[0]); got != want {
			t.Errorf("IDsPerJob(%d) = %d; packing %d-character ids puts %d in the first job", length, got, length, want)
		}
	}
}
