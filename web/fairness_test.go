package web_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
)

// One person probing unknown job ids spends only their own share of the
// hub's budget: a colleague's job page still loads, and a colleague's
// cancel still goes through once reads have used up everything but the
// reserve kept for writes (its re-read is part of the write).
func TestOnePersonsReadsLeaveOthersTheirPagesAndCancels(t *testing.T) {
	// 100 calls a minute: a burst of 10, a share of 5 per person, 2 kept for writes.
	p := newPortal(t, portalOptions{hubs: []hubSpec{{name: "prod", devices: 10, opsPerMin: 100}}})
	p.scheduledJob("prod", "viewed")
	p.scheduledJob("prod", "to-cancel")
	mallory := p.as(&user{name: "Mallory Viewer", roles: []auth.Role{auth.RoleViewer}, claims: []string{"Jobs.Read"}})
	olga := p.as(&user{name: "Olga Operator", roles: []auth.Role{auth.RoleOperator}, claims: []string{"Jobs.Cancel"}})

	readUntilRefused := func(u *user, prefix string) int {
		t.Helper()
		for i := range 50 {
			r := p.get(u, fmt.Sprintf("/hubs/prod/jobs/%s-%d", prefix, i))
			switch r.StatusCode {
			case http.StatusNotFound:
			case http.StatusServiceUnavailable:
				return i
			default:
				t.Fatalf("%s's read %d: status %d", u.name, i, r.StatusCode)
			}
		}
		t.Fatalf("%s was never refused", u.name)
		return 0
	}
	if n := readUntilRefused(mallory, "probe"); n == 0 || n > 5 {
		t.Fatalf("mallory read %d unknown ids before the refusal, want 1..5 (her share)", n)
	}

	if r := p.get(olga, "/hubs/prod/jobs/viewed"); r.StatusCode != http.StatusOK {
		t.Fatalf("olga's job page after mallory's probing: status %d, want 200", r.StatusCode)
	}
	// Olga's own reads now run the bucket down to its write reserve.
	readUntilRefused(olga, "olga")

	r := p.cancel(olga, "prod", "to-cancel", nil, "HX-Request", "true")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("olga's cancel with only the write reserve left: status %d\n%s", r.StatusCode, r.body)
	}
	if got := p.hubJob("prod", "to-cancel").Status; got != hub.StatusCancelled {
		t.Errorf("hub says %s, want cancelled", got)
	}
}
