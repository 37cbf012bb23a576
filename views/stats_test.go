package views

import "testing"

func TestStatsPercentNeverRoundsAwayAShare(t *testing.T) {
	s := Stats{Devices: 1500}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "0"}, {1, "<1"}, {10, "<1"}, {15, "1"}, {512, "34"}, {1485, ">99"}, {1499, ">99"}, {1500, "100"}, {1600, "100"},
	} {
		if got := s.Percent(tc.n); got != tc.want {
			t.Errorf("Percent(%d of 1500) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := (Stats{}).Percent(3); got != "0" {
		t.Errorf("Percent with no device count = %q, want 0", got)
	}
}
