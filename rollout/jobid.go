package rollout

import (
	"strconv"
	"strings"
)

// RolloutOf is the rollout a hub job belongs to, read from its id (the
// inverse of JobID): ok is false for any id JobID does not make, such as
// a job created outside the portal. It lets an event about the hub job (a
// cancel from the job page) be ordered with the rest of its rollout's.
func RolloutOf(jobID string) (rid string, ok bool) {
	parts := strings.Split(jobID, "-")
	if len(parts) != 4 || parts[0] != "hj" || !ValidID(parts[1]) || !strings.HasPrefix(parts[2], "w") {
		return "", false
	}
	wave, werr := strconv.Atoi(parts[2][1:])
	part, perr := strconv.Atoi(parts[3])
	if werr != nil || perr != nil || wave < 1 || part < 1 || JobID(parts[1], wave, part) != jobID {
		return "", false // JobID's own spelling only: no signs, no leading zeros
	}
	return parts[1], true
}
