package hub

import (
	"strings"
	"testing"
)

func TestValidJobID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "Job_01-x": true, "6f1c2d3e-0000-4000-8000-000000000000": true, strings.Repeat("z", 128): true,
		"": false, strings.Repeat("z", 129): false, "a.b": false, "a'b": false, "a/b": false, "ä": false, "a b": false,
	} {
		if ValidJobID(id) != want {
			t.Errorf("ValidJobID(%q) = %v", id, !want)
		}
	}
}
