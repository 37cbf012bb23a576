package rollout

import (
	"fmt"
	"time"

	"github.com/hubjobs/hubjobs/hub"
)

// nextWords says in plain words what happens next to r and when, for the
// rollout page.
func (e *Engine) nextWords(r record, rows []jobRow) string {
	n, waves := r.status.Wave, len(r.sizes)
	switch r.status.State {
	case Planned:
		if r.listed() && !r.planned() {
			return fmt.Sprintf("the engine reads the device list and plans the waves at its next poll (every %s)", e.poll)
		}
		return fmt.Sprintf("wave 1 starts at the engine's next poll (every %s)", e.poll)
	case Running:
		if n == waves {
			return fmt.Sprintf("the rollout completes when wave %d's jobs finish, unless a rule fires", n)
		}
		return fmt.Sprintf("when wave %d's jobs finish and pass the rules, wave %d (%s) is scheduled to start %s later",
			n, n+1, devicesWord(r.sizes[n]), r.spec.Bake)
	case Baking:
		ends, _ := r.machine().BakeEnds(r.status)
		if r.machine().gated(n) && !r.status.Approved {
			return fmt.Sprintf("wave %d (%s) needs an approver; the bake ends at %s", n, devicesWord(r.sizes[n-1]), clock(ends))
		}
		return fmt.Sprintf("wave %d (%s) starts at %s unless a rule fires", n, devicesWord(r.sizes[n-1]), clock(ends))
	case AwaitingApproval:
		return fmt.Sprintf("wave %d (%s) starts once an approver who is not the author approves it", n, devicesWord(r.sizes[n-1]))
	case Halted:
		var last time.Time
		running := ""
		for _, j := range rows {
			if (j.state == jobCreated || j.state == jobCancelling) && j.status.Normalized() == hub.StatusRunning {
				running = j.id
				if j.stops.After(last) {
					last = j.stops
				}
			}
		}
		switch {
		case running != "" && !last.IsZero():
			return fmt.Sprintf("halted: nothing more is sent; job %s is running and cannot be cancelled, it stops by itself by %s", running, clock(last))
		case running != "":
			return fmt.Sprintf("halted: nothing more is sent; job %s is running and cannot be cancelled, it runs to its end", running)
		}
		return "halted: nothing more is sent"
	case Completed:
		return "completed: every wave finished"
	}
	return ""
}
