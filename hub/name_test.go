package hub

import (
	"strings"
	"testing"
)

func TestValidHubName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"prod", true},
		{"eu-west-2", true},
		{"0", true},
		{strings.Repeat("a", 32), true},
		{"", false},
		{strings.Repeat("a", 33), false},
		{"Prod", false},
		{"eu_west", false},
		{"e%75", false},
		{"eu/west", false},
		{"eu.west", false},
		{"prod\n", false},
	}
	for _, tt := range tests {
		if got := ValidHubName(tt.name); got != tt.want {
			t.Errorf("ValidHubName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
