package handlers

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hubjobs/hubjobs/hub"
)

func TestDetailsMemo_OneCopyPerHubAnswer(t *testing.T) {
	m := New(Config{})
	first := &hub.Job{JobID: "j", CloudToDeviceMethod: &hub.CloudToDeviceMethod{MethodName: "reboot", Payload: json.RawMessage(`{"delay":5}`)}}
	a, b := m.detailsOf("prod", "j", first), m.detailsOf("prod", "j", first)
	if a.method == nil || a.method != b.method {
		t.Fatalf("the same hub answer was pretty-printed twice (%p, %p)", a.method, b.method)
	}
	if want := "{\n  \"delay\": 5\n}"; a.method.Payload != want {
		t.Errorf("payload %q, want %q", a.method.Payload, want)
	}
	// The hub's next answer for the job is a new *hub.Job: never the old details.
	next := &hub.Job{JobID: "j", UpdateTwin: &hub.Twin{Tags: map[string]any{"ring": 2}}}
	c := m.detailsOf("prod", "j", next)
	if c.method != nil || c.twin == nil || c.twin.Tags != "{\n  \"ring\": 2\n}" {
		t.Fatalf("details of the next answer: %+v %+v", c.method, c.twin)
	}
	if other := m.detailsOf("eu", "j", first); other.method == a.method {
		t.Error("another hub's job shared the entry")
	}
}

func TestDetailsMemo_Bounded(t *testing.T) {
	m := New(Config{})
	j := &hub.Job{}
	for i := range detailsMemoMax + 10 {
		m.detailsOf("prod", fmt.Sprint("job-", i), j)
		if m.details.Len() > detailsMemoMax {
			t.Fatalf("%d entries, want at most %d", m.details.Len(), detailsMemoMax)
		}
	}
}
