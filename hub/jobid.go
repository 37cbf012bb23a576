package hub

import (
	"fmt"
)

// ValidJobID reports whether id is safe to put in a hub URL and a query:
// [A-Za-z0-9_-], 1..128 characters. IoT Hub documents no job-id rule (the
// SDKs use GUIDs), so this is a conservative assumption: it admits every
// id the portal's own tools create and nothing that could change a path or
// a query. Widen it only deliberately.
func ValidJobID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b == '-' || b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z') {
			return false
		}
	}
	return true
}

// CheckJobID is ValidJobID as an error naming the rule, for callers that
// show the reason to a person. The id is quoted and clipped in the message.
func CheckJobID(id string) error {
	if ValidJobID(id) {
		return nil
	}
	what := fmt.Sprintf("%q", clip(id, 40))
	if id == "" {
		what = "(empty)"
	} else if len(id) > 128 {
		what += fmt.Sprintf(" (%d characters)", len(id))
	}
	return fmt.Errorf("%w %s: a job id is 1 to 128 characters, each a letter, a digit, '-' or '_'", ErrInvalidJobID, what)
}
