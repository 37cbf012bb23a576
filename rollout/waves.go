package rollout

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxWaves bounds a wave specification. Twenty waves of even a 15-minute
// bake already take five hours; more is a sign of a typo, and every wave is
// a row on the rollout page.
const MaxWaves = 20

// ErrWaveSpec is wrapped by every wave-specification error, so a handler can
// tell "the form is wrong" from anything else with errors.Is.
var ErrWaveSpec = errors.New("invalid waves")

// SpecError says which entry of a wave specification is wrong and why, in
// words meant to be shown next to the form field as they are.
type SpecError struct {
	Entry   int    // 1-based position in the list; 0 for the list as a whole
	Text    string // the entry as typed
	Problem string
}

func (e *SpecError) Error() string {
	if e.Entry == 0 {
		return e.Problem
	}
	return fmt.Sprintf("wave %d (%q): %s", e.Entry, e.Text, e.Problem)
}

func (e *SpecError) Unwrap() error { return ErrWaveSpec }

// step is one cumulative target: either an absolute device count or a share
// of all devices in hundredths of a percent (basis points), kept as an
// integer so that 0.1 % of 1,000 is exactly 1 device, not 1.0000000000000002.
type step struct {
	count int // > 0 for a count step
	bps   int // > 0 for a percentage step, 1..10000
}

// target is the cumulative number of devices this step reaches out of total.
// Percentages round up so that a small share of a small fleet is never an
// empty canary.
func (s step) target(total int) int {
	if s.count > 0 {
		return min(s.count, total)
	}
	return (s.bps*total + 9999) / 10000
}

func (s step) String() string {
	if s.count > 0 {
		return strconv.Itoa(s.count)
	}
	return formatBasisPoints(s.bps) + "%"
}

// WaveSpec is a parsed, validated list of cumulative wave sizes such as
// "10,25%,100%": 10 devices, then up to a quarter of all, then the rest.
// The zero value is one wave of every device.
type WaveSpec struct {
	steps []step // never ends in 100 %: the final "rest" wave is implied
}

// ParseWaves reads a comma-separated list of cumulative sizes. Each entry is
// a device count ("10") or a percentage of all devices ("25%", "2.5 %", up to
// two decimals). Counts must grow from one count to the next and percentages
// from one percentage to the next; "100%" may only come last, and when it is
// missing the rest of the devices form an implied last wave. An empty
// string is one wave of every device.
func ParseWaves(s string) (WaveSpec, error) {
	if strings.TrimSpace(s) == "" {
		return WaveSpec{}, nil
	}
	entries := strings.Split(s, ",")
	var spec WaveSpec
	var lastCount, lastBps int
	var lastCountText, lastBpsText string
	for i, raw := range entries {
		text := strings.TrimSpace(raw)
		n := i + 1
		if lastBps == 10000 {
			return WaveSpec{}, &SpecError{Entry: n, Text: text, Problem: "nothing can follow 100 %, which already reaches every device"}
		}
		st, err := parseStep(text)
		if err != nil {
			return WaveSpec{}, &SpecError{Entry: n, Text: text, Problem: err.Error()}
		}
		switch {
		case st.count > 0 && st.count <= lastCount:
			return WaveSpec{}, &SpecError{Entry: n, Text: text, Problem: fmt.Sprintf("must be larger than %s: sizes are cumulative, each counts every device reached so far", lastCountText)}
		case st.bps > 0 && st.bps <= lastBps:
			return WaveSpec{}, &SpecError{Entry: n, Text: text, Problem: fmt.Sprintf("must be larger than %s: sizes are cumulative, each counts every device reached so far", lastBpsText)}
		case st.count > 0:
			lastCount, lastCountText = st.count, text
		default:
			lastBps, lastBpsText = st.bps, text
		}
		spec.steps = append(spec.steps, st)
	}
	if lastBps == 10000 {
		spec.steps = spec.steps[:len(spec.steps)-1]
	}
	if len(spec.steps)+1 > MaxWaves {
		return WaveSpec{}, &SpecError{Problem: fmt.Sprintf("%d waves (counting the last one for the rest of the devices) is more than the %d allowed", len(spec.steps)+1, MaxWaves)}
	}
	return spec, nil
}

func parseStep(text string) (step, error) {
	if text == "" {
		return step{}, errors.New("is empty: write a device count such as 10 or a percentage such as 25%")
	}
	number, isPercent := strings.CutSuffix(text, "%")
	number = strings.TrimSpace(number)
	if !isPercent {
		n, err := strconv.Atoi(number)
		if err != nil || n < 1 {
			return step{}, errors.New("is not a device count (a whole number from 1) nor a percentage such as 25%")
		}
		return step{count: n}, nil
	}
	bps, ok := parseBasisPoints(number)
	if !ok {
		return step{}, errors.New("is not a percentage above 0 and at most 100, with at most two decimals")
	}
	return step{bps: bps}, nil
}

// parseBasisPoints reads "25", "2.5" or "0.25" as hundredths of a percent
// without going through floating point.
func parseBasisPoints(s string) (int, bool) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(whole) > 3 || (hasFrac && (frac == "" || len(frac) > 2)) {
		return 0, false
	}
	for len(frac) < 2 {
		frac += "0"
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	w, _ := strconv.Atoi(whole)
	f, _ := strconv.Atoi(frac)
	bps := w*100 + f
	return bps, bps > 0 && bps <= 10000
}

func formatBasisPoints(bps int) string {
	s := strconv.Itoa(bps / 100)
	if f := bps % 100; f != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%02d", f), "0")
	}
	return s
}

// String is the canonical form of the specification, with the implied last
// wave written out: "10,25%,100%".
func (w WaveSpec) String() string {
	parts := make([]string, 0, len(w.steps)+1)
	for _, s := range w.steps {
		parts = append(parts, s.String())
	}
	return strings.Join(append(parts, "100%"), ",")
}

// Waves is the number of waves the specification asks for; a small fleet
// may get fewer (see Sizes).
func (w WaveSpec) Waves() int { return len(w.steps) + 1 }

// cut returns, for total devices, the non-empty waves as (size, spec entry)
// pairs. A step whose cumulative target does not exceed what earlier steps
// already reach is an empty wave and is dropped rather than refused: the
// fleet size is only known at plan time, and "10,25%" over 20 devices
// (10, then 25 % = 5) should plan as the two waves 10 and 10, not fail.
func (w WaveSpec) cut(total int) ([]int, []string) {
	var sizes []int
	var labels []string
	reached := 0
	for _, s := range append(w.steps, step{bps: 10000}) {
		t := s.target(total)
		if t <= reached {
			continue
		}
		sizes = append(sizes, t-reached)
		labels = append(labels, s.String())
		reached = t
	}
	return sizes, labels
}

// Sizes returns the per-wave device counts for total devices. They sum to
// total; empty waves are dropped, so a small fleet may get fewer waves than
// the specification lists, and zero devices give no wave at all.
func (w WaveSpec) Sizes(total int) ([]int, error) {
	if total < 0 {
		return nil, fmt.Errorf("%w: a negative device count (%d)", ErrWaveSpec, total)
	}
	sizes, _ := w.cut(total)
	return sizes, nil
}

// Sizes parses spec and cuts total devices with it, for the form's live
// preview of wave sizes.
func Sizes(spec string, total int) ([]int, error) {
	w, err := ParseWaves(spec)
	if err != nil {
		return nil, err
	}
	return w.Sizes(total)
}
