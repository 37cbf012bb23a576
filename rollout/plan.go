package rollout

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hubjobs/hubjobs/hub"
)

// MaxCondition is IoT Hub's documented limit for a query expression, in
// characters. A job's queryCondition longer than this is refused.
const MaxCondition = hub.MaxQueryLength

// conditionBudget is what the planner lets an IN-list condition grow to. The
// hub documents 8,192 characters for "query expressions" but not whether a
// job's condition is counted alone or inside the SELECT it is expanded
// into, so the planner keeps room for that prefix: it costs under 1 % more
// hub jobs and removes the doubt.
const conditionBudget = MaxCondition - len("SELECT * FROM devices WHERE ")

const (
	inPrefix = "deviceId IN ["
	inSuffix = "]"
	// idLength is the length of the ids NewID makes: 36^12 ≈ 4.7·10^18
	// possibilities, so two rollouts never share an id (and thus hub job ids).
	idLength   = 12
	maxIDLen   = 16
	maxDevice  = 128 // IoT Hub's device id limit
	idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
)

var (
	// ErrInvalidID: a rollout id is 1 to 16 characters, each a-z or 0-9.
	ErrInvalidID = errors.New("invalid rollout id")
	// ErrNoDevices: a plan needs at least one device.
	ErrNoDevices = errors.New("no devices to roll out to")
	// ErrDeviceID: a device id IoT Hub could not have issued.
	ErrDeviceID = errors.New("invalid device id")
	// ErrConditionTooLong: a one-wave condition over MaxCondition.
	ErrConditionTooLong = errors.New("query condition too long")
)

// NewID returns a fresh rollout id of 12 characters from [a-z0-9], drawn
// from crypto/rand so that ids cannot be guessed and, being the key of the
// device order, a wave's membership cannot be predicted before the plan.
func NewID() string {
	var b [idLength]byte
	for i := 0; i < len(b); {
		var r [16]byte
		_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
		for _, x := range r {
			// Reject the top of the byte range so that every character is
			// equally likely: 252 is the largest multiple of 36 below 256.
			if x < 252 && i < len(b) {
				b[i] = idAlphabet[x%36]
				i++
			}
		}
	}
	return string(b[:])
}

// ValidID reports whether rid is a rollout id: 1 to 16 characters from
// [a-z0-9]. That keeps hub job ids derived from it valid and URL-safe.
func ValidID(rid string) bool {
	if len(rid) == 0 || len(rid) > maxIDLen {
		return false
	}
	for i := 0; i < len(rid); i++ {
		if !strings.ContainsRune(idAlphabet, rune(rid[i])) {
			return false
		}
	}
	return true
}

// JobID is the deterministic hub job id of a part of a wave (both 1-based):
// a create retried after a crash hits JobAlreadyExists instead of creating a
// second job for the same devices.
func JobID(rid string, wave, part int) string {
	return "hj-" + rid + "-w" + strconv.Itoa(wave) + "-" + strconv.Itoa(part)
}

// Plan is a rollout's frozen delivery plan: every device exactly once, in
// keyed-hash order, cut into waves, each wave into hub jobs.
type Plan struct {
	RolloutID string
	Spec      WaveSpec
	Devices   int // total devices across all waves
	Waves     []Wave
}

// Wave is one step of a plan.
type Wave struct {
	Number  int      // 1-based
	Step    string   // the spec entry it comes from, e.g. "25%"
	Size    int      // devices in this wave
	Devices []string // in plan order; nil when the wave targets a condition
	Jobs    []Job
}

// Job is one hub job of a wave.
type Job struct {
	ID        string // hj-{rid}-w{wave}-{part}
	Wave      int
	Part      int // 1-based within the wave
	Condition string
	Devices   []string // the devices its condition names; nil for a condition plan
}

// Jobs is the number of hub jobs over all waves.
func (p *Plan) Jobs() int {
	n := 0
	for _, w := range p.Waves {
		n += len(w.Jobs)
	}
	return n
}

// NewConditionPlan is the one-wave plan: the user's condition goes to the
// hub as is, in a single job, and devices is the count the hub reported.
func NewConditionPlan(rid, condition string, devices int) (*Plan, error) {
	if !ValidID(rid) {
		return nil, fmt.Errorf("%w %q: 1 to 16 characters, each a-z or 0-9", ErrInvalidID, rid)
	}
	if len(condition) > MaxCondition {
		return nil, fmt.Errorf("%w: %d characters, the hub allows %d", ErrConditionTooLong, len(condition), MaxCondition)
	}
	if devices < 1 {
		return nil, ErrNoDevices
	}
	id := JobID(rid, 1, 1)
	return &Plan{
		RolloutID: rid,
		Devices:   devices,
		Waves: []Wave{{
			Number: 1, Step: "100%", Size: devices,
			Jobs: []Job{{ID: id, Wave: 1, Part: 1, Condition: condition}},
		}},
	}, nil
}

// NewPlan freezes deviceIDs into a plan: duplicates removed, ordered by
// HMAC-SHA256(key = rid and secret, message = device id), cut into waves by
// spec, and each wave cut into hub jobs whose `deviceId IN [...]`
// condition stays under the hub's length limit.
//
// The rollout id comes from the author's form (it makes a double submit
// idempotent), so on its own it would let an author choose it and predict
// which devices land in wave 1. secret is drawn by the engine when it
// creates the rollout (NewPlanSecret) and stored with it: every wave is a
// sample nobody can steer, yet the same row always rebuilds the same plan.
// An empty secret keys by the id alone (rollouts stored before the secret
// existed; previews, whose device order is not the one that goes out).
// Hub job ids stay hj-{rid}-w{n}-{part} whatever the secret.
func NewPlan(rid, secret string, deviceIDs []string, spec WaveSpec) (*Plan, error) {
	if !ValidID(rid) {
		return nil, fmt.Errorf("%w %q: 1 to 16 characters, each a-z or 0-9", ErrInvalidID, rid)
	}
	key := rid
	if secret != "" {
		key += ":" + secret // ids are [a-z0-9]: no other (rid, secret) gives this key
	}
	ordered, err := hashOrder(key, deviceIDs)
	if err != nil {
		return nil, err
	}
	if len(ordered) == 0 {
		return nil, ErrNoDevices
	}
	sizes, labels := spec.cut(len(ordered))
	p := &Plan{RolloutID: rid, Spec: spec, Devices: len(ordered), Waves: make([]Wave, len(sizes))}
	start := 0
	for i, size := range sizes {
		devices := ordered[start : start+size : start+size]
		start += size
		p.Waves[i] = Wave{
			Number: i + 1, Step: labels[i], Size: size, Devices: devices,
			Jobs: splitJobs(rid, i+1, devices),
		}
	}
	return p, nil
}

// NewPlanSecret draws the secret that keys a rollout's device order
// (NewPlan): 128 random bits, hex.
func NewPlanSecret() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// hashOrder dedupes and orders ids by their keyed hash. Equal ids have equal
// hashes, so after sorting duplicates are neighbours and no set is needed.
func hashOrder(key string, ids []string) ([]string, error) {
	type keyed struct {
		sum [sha256.Size]byte
		id  string
	}
	mac := hmac.New(sha256.New, []byte(key))
	all := make([]keyed, len(ids))
	for i, id := range ids {
		if err := checkDeviceID(id); err != nil {
			return nil, err
		}
		mac.Reset()
		mac.Write([]byte(id))
		mac.Sum(all[i].sum[:0])
		all[i].id = id
	}
	slices.SortFunc(all, func(a, b keyed) int {
		if c := bytes.Compare(a.sum[:], b.sum[:]); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]string, 0, len(all))
	for i, k := range all {
		if i > 0 && all[i-1].id == k.id {
			continue
		}
		out = append(out, k.id)
	}
	return out, nil
}

// checkDeviceID refuses what IoT Hub could not have issued: empty, longer
// than 128 characters, or outside printable 7-bit ASCII. Anything else is
// quoted, so it can never change the meaning of a condition.
func checkDeviceID(id string) error {
	if id == "" || len(id) > maxDevice {
		return fmt.Errorf("%w %q: a device id is 1 to %d characters", ErrDeviceID, clip(id), maxDevice)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return fmt.Errorf("%w %q: a device id is printable ASCII only", ErrDeviceID, clip(id))
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// splitJobs cuts a wave's devices into hub jobs whose IN-list conditions
// fit the length budget.
func splitJobs(rid string, wave int, devices []string) []Job {
	groups := packIN(devices, 0)
	jobs := make([]Job, len(groups))
	for i, g := range groups {
		jobs[i] = Job{ID: JobID(rid, wave, i+1), Wave: wave, Part: i + 1, Condition: inList(g), Devices: g}
	}
	return jobs
}

// packIN cuts devices, in order, into as few groups as possible whose
// `deviceId IN [...]` list, plus extra characters around it, fits the
// budget. A single quoted id is at most 2·128+2 characters, far under it,
// so every group holds at least one device.
func packIN(devices []string, extra int) [][]string {
	var groups [][]string
	first, length := 0, 0
	for i, id := range devices {
		q := quotedLen(id)
		if i > first && length+1+q+len(inSuffix) > conditionBudget-extra {
			groups = append(groups, devices[first:i:i])
			first = i
		}
		if i == first {
			length = len(inPrefix) + q
		} else {
			length += 1 + q
		}
	}
	if len(devices) > first {
		groups = append(groups, devices[first:len(devices):len(devices)])
	}
	return groups
}

// IDsPerJob is how many device ids of idLength characters (without quotes
// or backslashes) one IN-list hub job holds under the planner's budget:
// what a plan whose device list is not frozen yet estimates its hub jobs
// from. Each id costs its quotes and a comma.
func IDsPerJob(idLength int) int {
	return max(1, (conditionBudget-len(inPrefix)-len(inSuffix)+1)/(idLength+3))
}

// quotedLen is len(hub.QuoteString(id)) without building the string.
func quotedLen(id string) int {
	return len(id) + 2 + strings.Count(id, `'`) + strings.Count(id, `\`)
}

// inList is the `deviceId IN ['a','b']` condition naming devices.
func inList(devices []string) string {
	var b strings.Builder
	b.WriteString(inPrefix)
	for i, id := range devices {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(hub.QuoteString(id))
	}
	b.WriteString(inSuffix)
	return b.String()
}

const countPrefix = "SELECT COUNT() AS numberOfDevices FROM devices WHERE "

// HealthQueries are the COUNT queries that count, among the devices of
// waves 1 to through, those matching health (the rollout's "unhealthy"
// condition); their counts add up. Device lists are split so that every
// full query stays under the hub's length limit.
func (p *Plan) HealthQueries(health string, through int) ([]string, error) {
	head := countPrefix + "(" + health + ") AND "
	var queries []string
	var reached []string
	for _, w := range p.Waves[:min(max(through, 0), len(p.Waves))] {
		if w.Devices == nil { // a condition plan: its one job's condition
			q := head + "(" + w.Jobs[0].Condition + ")"
			if len(q) > MaxCondition {
				return nil, fmt.Errorf("%w: the health count query is %d characters, the hub allows %d", ErrConditionTooLong, len(q), MaxCondition)
			}
			queries = append(queries, q)
			continue
		}
		reached = append(reached, w.Devices...)
	}
	if len(reached) == 0 {
		return queries, nil
	}
	if conditionBudget-len(head) < len(inPrefix)+2*maxDevice+2+len(inSuffix) {
		return nil, fmt.Errorf("%w: the health query leaves no room for the device list", ErrConditionTooLong)
	}
	for _, g := range packIN(reached, len(head)) {
		queries = append(queries, head+inList(g))
	}
	return queries, nil
}
