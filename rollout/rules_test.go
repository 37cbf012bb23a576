package rollout

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEvaluateFailures(t *testing.T) {
	five := Percent(5)
	tests := []struct {
		name  string
		rules Rules
		waves []WaveStats
		want  string
		fired bool
	}{
		{"passes under the percentage", Rules{Failures: five, MinFinished: 20},
			[]WaveStats{{Wave: 1, Size: 10, Finished: 10}, {Wave: 2, Size: 250, Finished: 250, Failed: 7}},
			"wave 2: 7 of 250 failed (2.8 %), threshold 5 %: passed", false},
		{"fires above the percentage", Rules{Failures: five},
			[]WaveStats{{Wave: 2, Size: 250, Finished: 250, Failed: 14}},
			"wave 2: 14 of 250 failed (5.6 %), threshold 5 %: halt", true},
		{"exactly at the threshold passes", Rules{Failures: five},
			[]WaveStats{{Wave: 1, Size: 100, Finished: 100, Failed: 5}},
			"wave 1: 5 of 100 failed (5 %), threshold 5 %: passed", false},
		{"too few finished", Rules{Failures: five, MinFinished: 20},
			[]WaveStats{{Wave: 2, Size: 250, Finished: 12, Failed: 12}},
			"wave 2: not evaluated yet: 12 of 20 minimum devices finished", false},
		{"nothing finished and no minimum", Rules{Failures: five},
			[]WaveStats{{Wave: 1, Size: 10}},
			"wave 1: not evaluated yet: 0 of 1 minimum devices finished", false},
		{"a count threshold", Rules{Failures: Count(10)},
			[]WaveStats{{Wave: 3, Size: 5000, Finished: 4000, Failed: 11}},
			"wave 3: 11 of 4,000 failed (0.3 %), threshold 10 devices: halt", true},
		{"count 0 fires on the first failure", Rules{Failures: Count(0)},
			[]WaveStats{{Wave: 1, Size: 10, Finished: 3, Failed: 1}},
			"wave 1: 1 of 3 failed (33.3 %), threshold 0 devices: halt", true},
		{"cumulative adds every wave", Rules{Failures: five, Scope: Cumulative},
			[]WaveStats{{Wave: 1, Size: 10, Finished: 10, Failed: 4}, {Wave: 2, Size: 90, Finished: 90, Failed: 2}},
			"waves 1–2: 6 of 100 failed (6 %), threshold 5 %: halt", true},
		{"per wave ignores earlier waves", Rules{Failures: five, Scope: PerWave},
			[]WaveStats{{Wave: 1, Size: 10, Finished: 10, Failed: 4}, {Wave: 2, Size: 90, Finished: 90, Failed: 2}},
			"wave 2: 2 of 90 failed (2.2 %), threshold 5 %: passed", false},
		{"no rule", Rules{},
			[]WaveStats{{Wave: 1, Size: 10, Finished: 10, Failed: 10}},
			"wave 1: 10 of 10 failed (100 %), no failure rule", false},
		{"no wave yet", Rules{Failures: five}, nil, "no wave has started", false},
	}
	for _, tt := range tests {
		v := tt.rules.EvaluateFailures(tt.waves)
		if v.Text != tt.want || v.Fired != tt.fired || v.Rule != HaltFailures {
			t.Errorf("%s: %+v, want %q fired=%v", tt.name, v, tt.want, tt.fired)
		}
	}
}

func TestEvaluateHealth(t *testing.T) {
	r := Rules{HealthQuery: "properties.reported.health = 'error'", Health: Percent(2)}
	tests := []struct {
		rules                    Rules
		wave, unhealthy, reached int
		want                     string
		fired                    bool
	}{
		{r, 3, 4, 510, "before wave 3: 4 of 510 reached devices unhealthy (0.8 %), threshold 2 %: passed", false},
		{r, 2, 1, 10, "before wave 2: 1 of 10 reached devices unhealthy (10 %), threshold 2 %: halt", true},
		{r, 2, 0, 0, "before wave 2: not evaluated yet: no device reached", false},
		{Rules{HealthQuery: "x = 1", Health: Count(1)}, 2, 1, 10, "before wave 2: 1 of 10 reached devices unhealthy (10 %), threshold 1 device: passed", false},
		{Rules{}, 2, 5, 10, "before wave 2: no health rule", false},
	}
	for _, tt := range tests {
		v := tt.rules.EvaluateHealth(tt.wave, tt.unhealthy, tt.reached)
		if v.Text != tt.want || v.Fired != tt.fired || v.Rule != HaltHealth {
			t.Errorf("%+v, want %q fired=%v", v, tt.want, tt.fired)
		}
	}
}

func TestParseThreshold(t *testing.T) {
	for in, want := range map[string]string{"5%": "5 %", " 2.5 % ": "2.5 %", "10": "10 devices", "1": "1 device", "0": "0 devices", "": "none", "1000000": "1,000,000 devices"} {
		th, err := ParseThreshold(in)
		if err != nil || th.String() != want {
			t.Errorf("ParseThreshold(%q) = %s, %v; want %s", in, th, err, want)
		}
	}
	for _, in := range []string{"0%", "101%", "-1", "five", "5.555%"} {
		if _, err := ParseThreshold(in); !errors.Is(err, ErrRules) {
			t.Errorf("ParseThreshold(%q): %v, want ErrRules", in, err)
		}
	}
}

func TestValidateRules(t *testing.T) {
	ok := []Rules{{}, {Failures: Percent(5), MinFinished: 20, Scope: Cumulative, HealthQuery: "x = 1", Health: Count(3), ApprovalOverDevices: 1000, ApprovalWaves: []int{2}}}
	for _, r := range ok {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	tests := []struct {
		r    Rules
		want string
	}{
		{Rules{Failures: Percent(0)}, "failures: a percentage threshold is above 0"},
		{Rules{Failures: Count(-1)}, "failures: a count threshold is 0 or more"},
		{Rules{MinFinished: -1}, "minimum of finished devices"},
		{Rules{Scope: "global"}, `scope "global" is neither per_wave nor cumulative`},
		{Rules{Health: Percent(1)}, "a health threshold needs a health query"},
		{Rules{HealthQuery: "x = 1"}, "a health query needs a threshold"},
		{Rules{HealthQuery: strings.Repeat("x", MaxCondition+1), Health: Count(1)}, "the hub allows 8192"},
		{Rules{ApprovalOverDevices: -1}, "approval over devices"},
		{Rules{ApprovalWaves: []int{0}}, "wave 0 cannot be marked"},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		if !errors.Is(err, ErrRules) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.r, err, tt.want)
		}
	}
}

func TestApprovalGates(t *testing.T) {
	spec, _ := ParseWaves("10,1000")
	p, _ := NewPlan("g1", "", guidIDs(5000, 3), spec) // waves of 10, 990, 4000
	tests := []struct {
		r    Rules
		want []bool
	}{
		{Rules{}, []bool{false, false, false}},
		{Rules{ApprovalOverDevices: 990}, []bool{false, false, true}},
		{Rules{ApprovalOverDevices: 989}, []bool{false, true, true}},
		{Rules{ApprovalWaves: []int{1}}, []bool{true, false, false}},
	}
	for _, tt := range tests {
		if got := tt.r.Gates(p); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: gates %v, want %v", tt.r, got, tt.want)
		}
	}
}

func TestCanApprove(t *testing.T) {
	alice := Identity{Issuer: "https://idp", Subject: "alice"}
	bob := Identity{Issuer: "https://idp", Subject: "bob"}
	otherAlice := Identity{Issuer: "https://other", Subject: "alice"}
	if err := CanApprove(alice, bob); err != nil {
		t.Errorf("bob approving alice's rollout: %v", err)
	}
	if err := CanApprove(alice, otherAlice); err != nil {
		t.Errorf("a subject of another issuer is another person: %v", err)
	}
	if err := CanApprove(alice, alice); !errors.Is(err, ErrSelfApproval) {
		t.Errorf("alice approving her own rollout: %v", err)
	}
	if err := CanApprove(alice, Identity{}); !errors.Is(err, ErrUnknownApprover) {
		t.Errorf("an anonymous approval: %v", err)
	}
}

func TestWorstCase(t *testing.T) {
	spec, _ := ParseWaves("10,100%")
	p, _ := NewPlan("w1", "", guidIDs(1000, 4), spec) // wave 2: 990 GUIDs in 5 jobs
	health := Rules{HealthQuery: "x = 1", Health: Count(0)}
	tests := []struct {
		name      string
		p         *Plan
		r         Rules
		maxActive int
		devices   int
		text      string
	}{
		{"failure rules stop before wave 2", p, Rules{Failures: Percent(5)}, 10, 10,
			"at most 10 devices receive this before a halt can stop it: all 10 of wave 1, whose jobs cannot be cancelled once running"},
		{"health on S1: one job of wave 2 may start", p, health, 1, 10 + len(p.Waves[1].Jobs[0].Devices),
			"and 209 of wave 2, whose scheduled jobs start as the bake ends"},
		{"health on S3: all five jobs of wave 2 may start", p, health, 10, 1000, "at most 1,000 devices receive this"},
		{"one wave: everything", mustConditionPlan(t), Rules{}, 1, 5000,
			"all 5,000 devices receive this before a halt can stop it: the rollout has one wave"},
	}
	for _, tt := range tests {
		e := WorstCase(tt.p, tt.r, tt.maxActive)
		if e.Devices != tt.devices || !strings.Contains(e.Text, tt.text) {
			t.Errorf("%s: %+v, want %d devices and %q", tt.name, e, tt.devices, tt.text)
		}
	}
}

func mustConditionPlan(t *testing.T) *Plan {
	t.Helper()
	p, err := NewConditionPlan("c1", "tags.env = 'prod'", 5000)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEstimate(t *testing.T) {
	spec, _ := ParseWaves("10,100%")
	p, _ := NewPlan("e1", "", guidIDs(1000, 5), spec) // 10 in 1 job, 990 in 5 jobs
	s1 := Capacity{DeviceRate: 10, MaxActiveJobs: 1, PollInterval: 15 * time.Second}
	eta, err := Estimate(p, 30*time.Minute, s1)
	if err != nil {
		t.Fatal(err)
	}
	want := []WaveETA{
		{Wave: 1, Devices: 10, Jobs: 1, Rounds: 1, Run: time.Second + 15*time.Second},
		{Wave: 2, Devices: 990, Jobs: 5, Rounds: 5, Bake: 30 * time.Minute, Run: 99*time.Second + 5*15*time.Second},
	}
	if !slices.Equal(eta.Waves, want) || eta.Total != 16*time.Second+30*time.Minute+174*time.Second {
		t.Errorf("S1 estimate %+v, want %+v", eta, want)
	}
	s3 := Capacity{DeviceRate: 50, MaxActiveJobs: 10, PollInterval: 15 * time.Second}
	eta, _ = Estimate(p, 0, s3)
	if eta.Waves[1].Rounds != 1 || eta.Waves[1].Run != 19800*time.Millisecond+15*time.Second {
		t.Errorf("S3 wave 2 %+v", eta.Waves[1])
	}
	for _, c := range []Capacity{{}, {DeviceRate: 10}, {MaxActiveJobs: 1}, {DeviceRate: 10, MaxActiveJobs: 1, PollInterval: -1}} {
		if _, err := Estimate(p, 0, c); !errors.Is(err, ErrCapacity) {
			t.Errorf("Estimate with %+v: %v, want ErrCapacity", c, err)
		}
	}
}
