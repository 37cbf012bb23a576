package rollout

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseWaves(t *testing.T) {
	tests := []struct {
		in, canonical string
		waves         int
	}{
		{"", "100%", 1},
		{"100%", "100%", 1},
		{"10,25%,100%", "10,25%,100%", 3},
		{"10, 25 %", "10,25%,100%", 3}, // the rest is implied
		{"1,2.5%,0.5%", "", 0},         // percentages must grow: refused below
		{"0.25%,12.50%", "0.25%,12.5%,100%", 3},
		{"5,50,100", "5,50,100,100%", 4},
		{"25%,10", "25%,10,100%", 3}, // counts and percentages are compared at plan time
	}
	for _, tt := range tests {
		spec, err := ParseWaves(tt.in)
		if tt.canonical == "" {
			if err == nil {
				t.Errorf("ParseWaves(%q) = %v, want an error", tt.in, spec)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseWaves(%q): %v", tt.in, err)
			continue
		}
		if got := spec.String(); got != tt.canonical || spec.Waves() != tt.waves {
			t.Errorf("ParseWaves(%q) = %q with %d waves, want %q with %d", tt.in, got, spec.Waves(), tt.canonical, tt.waves)
		}
	}
}

func TestParseWavesErrorsSayWhatIsWrong(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10,5", `wave 2 ("5"): must be larger than 10: sizes are cumulative`},
		{"10%,10%", `wave 2 ("10%"): must be larger than 10%`},
		{"100%,10", `wave 2 ("10"): nothing can follow 100 %`},
		{"10,,20", `wave 2 (""): is empty`},
		{"0", `wave 1 ("0"): is not a device count (a whole number from 1)`},
		{"-3", `is not a device count`},
		{"ten", `is not a device count`},
		{"0%", `is not a percentage above 0 and at most 100`},
		{"101%", `is not a percentage above 0`},
		{"1.234%", `with at most two decimals`},
		{"1e2%", `is not a percentage`},
		{"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20", "21 waves (counting the last one for the rest of the devices) is more than the 20 allowed"},
	}
	for _, tt := range tests {
		_, err := ParseWaves(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseWaves(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
		var se *SpecError
		if !errors.Is(err, ErrWaveSpec) || !errors.As(err, &se) {
			t.Errorf("ParseWaves(%q) error %v is not a *SpecError wrapping ErrWaveSpec", tt.in, err)
		}
	}
	if _, err := ParseWaves("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,100%"); err != nil {
		t.Errorf("19 steps and 100%% are exactly %d waves: %v", MaxWaves, err)
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		spec  string
		total int
		want  []int
	}{
		{"10,25%,100%", 1000, []int{10, 240, 750}},
		{"10,25%", 1000, []int{10, 240, 750}},
		{"100%", 7, []int{7}},
		{"", 3, []int{3}},
		{"10,25%,100%", 20, []int{10, 10}}, // 25 % of 20 is 5, below 10: that wave is empty and dropped
		{"10,25%,100%", 8, []int{8}},       // the canary already covers the fleet
		{"1%,2%", 50, []int{1, 49}},        // 1 % of 50 rounds up to one device; 2 % is one too, so empty
		{"0.1%,100%", 1000, []int{1, 999}}, // exact, no floating point drift
		{"25%,10", 100, []int{25, 75}},     // 10 after 25 % is empty at this size
		{"25%,10", 20, []int{5, 5, 10}},    // and not at this one
		{"10,25%,100%", 0, nil},            // no devices, no waves
		{"50%,75%", 3, []int{2, 1}},        // ceil(1.5)=2, ceil(2.25)=3: the implied rest is empty
		{"10,20,30", 25, []int{10, 10, 5}}, // counts are capped at the fleet
		{"33.33%,66.66%", 3, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		got, err := Sizes(tt.spec, tt.total)
		if err != nil {
			t.Errorf("Sizes(%q, %d): %v", tt.spec, tt.total, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Sizes(%q, %d) = %v, want %v", tt.spec, tt.total, got, tt.want)
		}
	}
	if _, err := Sizes("10", -1); !errors.Is(err, ErrWaveSpec) {
		t.Errorf("Sizes with a negative total: %v, want ErrWaveSpec", err)
	}
	if _, err := Sizes("10,5", 100); !errors.Is(err, ErrWaveSpec) {
		t.Errorf("Sizes with a bad spec: %v, want ErrWaveSpec", err)
	}
}

func FuzzSizes(f *testing.F) {
	for _, s := range []string{"10,25%,100%", "1%", "5,50,100", "0.01%,99.99%", "25%,10", ""} {
		f.Add(s, 1000)
	}
	f.Fuzz(func(t *testing.T, spec string, total int) {
		total %= 1_000_000
		if total < 0 {
			total = -total
		}
		w, err := ParseWaves(spec)
		if err != nil {
			return
		}
		again, err := ParseWaves(w.String())
		if err != nil || again.String() != w.String() {
			t.Fatalf("canonical form %q of %q does not parse back to itself: %v", w.String(), spec, err)
		}
		sizes, err := w.Sizes(total)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0
		for _, s := range sizes {
			if s <= 0 {
				t.Fatalf("Sizes(%q, %d) = %v has an empty wave", spec, total, sizes)
			}
			sum += s
		}
		if sum != total || len(sizes) > w.Waves() || len(sizes) > MaxWaves {
			t.Fatalf("Sizes(%q, %d) = %v: sum %d, %d waves (spec has %d)", spec, total, sizes, sum, len(sizes), w.Waves())
		}
	})
}
