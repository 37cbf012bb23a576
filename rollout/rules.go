package rollout

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrRules is wrapped by every rule-validation error.
var ErrRules = errors.New("invalid halt rules")

// Threshold is a limit given either as a percentage or as a device count.
// A rule fires when its measure is strictly above the threshold, so
// "5 %" passes at exactly 5 % and the count 0 fires on the first device.
// The zero value is "no threshold".
type Threshold struct {
	kind  thresholdKind
	value int // hundredths of a percent (1..10000) or a device count
}

type thresholdKind int

const (
	noThreshold thresholdKind = iota
	percentThreshold
	countThreshold
)

// Percent is a percentage threshold, rounded to two decimals.
func Percent(p float64) Threshold {
	return Threshold{kind: percentThreshold, value: int(math.Round(p * 100))}
}

// Count is a device-count threshold.
func Count(n int) Threshold { return Threshold{kind: countThreshold, value: n} }

// ParseThreshold reads "5%" (up to two decimals) or "10"; empty is no
// threshold.
func ParseThreshold(s string) (Threshold, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Threshold{}, nil
	}
	if number, ok := strings.CutSuffix(s, "%"); ok {
		bps, ok := parseBasisPoints(strings.TrimSpace(number))
		if !ok {
			return Threshold{}, fmt.Errorf("%w: %q is not a percentage above 0 and at most 100, with at most two decimals", ErrRules, s)
		}
		return Threshold{kind: percentThreshold, value: bps}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return Threshold{}, fmt.Errorf("%w: %q is neither a device count (a whole number from 0) nor a percentage such as 5%%", ErrRules, s)
	}
	return Count(n), nil
}

// IsSet reports whether t is a threshold at all.
func (t Threshold) IsSet() bool { return t.kind != noThreshold }

// String is the threshold as the page shows it: "5 %", "10 devices".
func (t Threshold) String() string {
	switch t.kind {
	case percentThreshold:
		return formatBasisPoints(t.value) + " %"
	case countThreshold:
		return devicesWord(t.value)
	default:
		return "none"
	}
}

// exceeded compares exactly, in integers: bad/of > value/10000.
func (t Threshold) exceeded(bad, of int) bool {
	if t.kind == percentThreshold {
		return bad*10000 > t.value*of
	}
	return bad > t.value
}

func (t Threshold) valid() error {
	switch {
	case t.kind == percentThreshold && (t.value < 1 || t.value > 10000):
		return errors.New("a percentage threshold is above 0 and at most 100")
	case t.kind == countThreshold && t.value < 0:
		return errors.New("a count threshold is 0 or more")
	}
	return nil
}

// Scope says which devices the failure rule counts.
type Scope string

const (
	PerWave    Scope = "per_wave"   // the current wave's devices only (the default)
	Cumulative Scope = "cumulative" // every device of every wave so far
)

// Rules are a rollout's halt rules and approval gate.
type Rules struct {
	// Failures: failed ÷ finished devices above this halts the rollout,
	// once at least MinFinished devices (in Scope) have finished.
	Failures    Threshold
	MinFinished int
	Scope       Scope
	// HealthQuery is a twin condition meaning "unhealthy", counted among the
	// devices already reached at the end of each bake; above Health halts.
	HealthQuery string
	Health      Threshold
	// ApprovalOverDevices gates every wave larger than this (0: none);
	// ApprovalWaves gates the listed wave numbers whatever their size.
	ApprovalOverDevices int
	ApprovalWaves       []int
}

// Validate checks the rules as a form would, one plain sentence per problem.
func (r Rules) Validate() error {
	var problems []string
	if err := r.Failures.valid(); err != nil {
		problems = append(problems, "failures: "+err.Error())
	}
	if err := r.Health.valid(); err != nil {
		problems = append(problems, "health: "+err.Error())
	}
	if r.MinFinished < 0 {
		problems = append(problems, "the minimum of finished devices is 0 or more")
	}
	if r.Scope != "" && r.Scope != PerWave && r.Scope != Cumulative {
		problems = append(problems, fmt.Sprintf("the failure scope %q is neither %s nor %s", r.Scope, PerWave, Cumulative))
	}
	switch query := strings.TrimSpace(r.HealthQuery); {
	case query == "" && r.Health.IsSet():
		problems = append(problems, "a health threshold needs a health query")
	case query != "" && !r.Health.IsSet():
		problems = append(problems, "a health query needs a threshold")
	case len(query) > MaxCondition:
		problems = append(problems, fmt.Sprintf("the health query is %d characters, the hub allows %d", len(query), MaxCondition))
	}
	if r.ApprovalOverDevices < 0 {
		problems = append(problems, "approval over devices is 0 (never) or more")
	}
	for _, w := range r.ApprovalWaves {
		if w < 1 || w > MaxWaves {
			problems = append(problems, fmt.Sprintf("wave %d cannot be marked for approval: waves are numbered 1 to %d", w, MaxWaves))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrRules, strings.Join(problems, "; "))
	}
	return nil
}

// NeedsApproval reports whether a wave of size devices waits for an
// approver: above ApprovalOverDevices, or marked in the form.
func (r Rules) NeedsApproval(wave, size int) bool {
	return (r.ApprovalOverDevices > 0 && size > r.ApprovalOverDevices) || slices.Contains(r.ApprovalWaves, wave)
}

// Gates lists, for each wave of p, whether it needs an approver; it is
// Machine.Gated.
func (r Rules) Gates(p *Plan) []bool {
	gates := make([]bool, len(p.Waves))
	for i, w := range p.Waves {
		gates[i] = r.NeedsApproval(w.Number, w.Size)
	}
	return gates
}

// WaveStats are a wave's device counts as read from its hub jobs.
type WaveStats struct {
	Wave     int
	Size     int // devices in the wave
	Finished int // devices with a final outcome (succeeded or failed)
	Failed   int
}

// Verdict is a rule evaluation in plain words, as the rollout page and the
// audit entry show it.
type Verdict struct {
	Evaluated bool       // false while too few devices finished, or no rule
	Fired     bool       // the rule says halt
	Rule      HaltReason // HaltFailures or HaltHealth
	Text      string     // "wave 2: 7 of 250 failed (2.8 %), threshold 5 %: passed"
}

// EvaluateFailures applies the failure rule to the waves so far, the
// current one last. Per wave it counts the last wave; cumulative, all.
func (r Rules) EvaluateFailures(waves []WaveStats) Verdict {
	v := Verdict{Rule: HaltFailures}
	if len(waves) == 0 {
		v.Text = "no wave has started"
		return v
	}
	current := waves[len(waves)-1]
	label := fmt.Sprintf("wave %d", current.Wave)
	finished, failed := current.Finished, current.Failed
	if r.Scope == Cumulative {
		if len(waves) > 1 {
			label = fmt.Sprintf("waves %d–%d", waves[0].Wave, current.Wave)
		}
		finished, failed = 0, 0
		for _, w := range waves {
			finished += w.Finished
			failed += w.Failed
		}
	}
	measured := fmt.Sprintf("%s: %s of %s failed (%s)", label, count(failed), count(finished), percentOf(failed, finished))
	switch {
	case !r.Failures.IsSet():
		v.Text = measured + ", no failure rule"
	case finished == 0 || finished < r.MinFinished:
		v.Text = fmt.Sprintf("%s: not evaluated yet: %s of %s minimum devices finished", label, count(finished), count(max(r.MinFinished, 1)))
	default:
		v.Evaluated = true
		v.Fired = r.Failures.exceeded(failed, finished)
		v.Text = fmt.Sprintf("%s, threshold %s: %s", measured, r.Failures, outcome(v.Fired))
	}
	return v
}

// EvaluateHealth applies the health rule at the end of the bake before
// wave: unhealthy is the health query's count among the reached devices.
func (r Rules) EvaluateHealth(wave, unhealthy, reached int) Verdict {
	v := Verdict{Rule: HaltHealth}
	label := fmt.Sprintf("before wave %d", wave)
	switch {
	case !r.Health.IsSet():
		v.Text = label + ": no health rule"
	case reached == 0:
		v.Text = label + ": not evaluated yet: no device reached"
	default:
		v.Evaluated = true
		v.Fired = r.Health.exceeded(unhealthy, reached)
		v.Text = fmt.Sprintf("%s: %s of %s reached devices unhealthy (%s), threshold %s: %s",
			label, count(unhealthy), count(reached), percentOf(unhealthy, reached), r.Health, outcome(v.Fired))
	}
	return v
}

func outcome(fired bool) string {
	if fired {
		return "halt"
	}
	return "passed"
}

// percentOf is part/whole as a percentage with at most one decimal.
func percentOf(part, whole int) string {
	if whole == 0 {
		return "0 %"
	}
	return strings.TrimSuffix(strconv.FormatFloat(float64(part)*100/float64(whole), 'f', 1, 64), ".0") + " %"
}

// count writes n with thousands separators: 100,000.
func count(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func devicesWord(n int) string {
	if n == 1 {
		return "1 device"
	}
	return count(n) + " devices"
}

// ErrSelfApproval: the author of a rollout cannot approve its waves.
var ErrSelfApproval = errors.New("the author of a rollout cannot approve it")

// ErrUnknownApprover: an approval needs a known person.
var ErrUnknownApprover = errors.New("an approval needs a signed-in approver")

// Identity is a person as the OIDC provider names them; issuer and subject
// together are stable, unlike names and e-mails.
type Identity struct {
	Issuer, Subject string
}

// CanApprove refuses an approval by the rollout's author (roles are the
// caller's check; this is the rule no role lifts, not even admin).
func CanApprove(author, approver Identity) error {
	if approver.Subject == "" || approver.Issuer == "" {
		return ErrUnknownApprover
	}
	if approver == author {
		return ErrSelfApproval
	}
	return nil
}
