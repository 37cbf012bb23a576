package handlers

import (
	"testing"
	"time"
)

// TestDurationTextIsWhatAPersonWrites: a copied job's durations come back
// into the form as one writes them, and the form reads them back the same.
func TestDurationTextIsWhatAPersonWrites(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{48 * time.Hour, "48h"},
		{10 * time.Minute, "10m"},
		{90 * time.Second, "1m30s"},
		{8 * time.Second, "8s"},
		{time.Hour + 5*time.Second, "1h0m5s"},
		{0, "0s"},
	}
	for _, tt := range tests {
		got := durationText(tt.d)
		if got != tt.want {
			t.Errorf("durationText(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != tt.d {
			t.Errorf("%q parses back as %v (%v), want %v", got, back, err, tt.d)
		}
	}
}
