package hubsim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
)

// Behaviour is how a registry device reacts to jobs.
type Behaviour string

const (
	// BehaviourOK: jobs succeed on the device (unless Options.FailureRate
	// picks it), and it then reports properties.reported.health = "ok".
	BehaviourOK Behaviour = "ok"
	// BehaviourFail: every job fails on the device — a status-500 method
	// response for method jobs, JobRunPreconditionFailed for twin jobs.
	BehaviourFail Behaviour = "fail"
	// BehaviourUnhealthy: jobs succeed, then the device reports
	// properties.reported.health = "error" (a rollout's health gate must
	// catch it although the hub says "completed").
	BehaviourUnhealthy Behaviour = "unhealthy"
)

// Device is one entry of a registry file (`hubjobs hubsim --registry`) or
// of Options.Registry: a device id, its twin's tags and reported
// properties, and its behaviour (empty means ok).
type Device struct {
	DeviceID  string         `json:"deviceId"`
	Tags      map[string]any `json:"tags,omitempty"`
	Reported  map[string]any `json:"reported,omitempty"`
	Behaviour Behaviour      `json:"behaviour,omitempty"`
}

// ErrInvalidRegistry wraps every registry validation failure.
var ErrInvalidRegistry = errors.New("invalid registry")

// LoadRegistry reads a registry file: a JSON array of Device objects.
// Unknown fields are refused (a misspelt "behavior" must not silently mean
// ok), and the result is validated like ValidateRegistry.
func LoadRegistry(r io.Reader) ([]Device, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRegistry, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var devices []Device
	if err := dec.Decode(&devices); err != nil {
		return nil, fmt.Errorf("%w: want a JSON array of {\"deviceId\", \"tags\"?, \"reported\"?, \"behaviour\"?}: %w", ErrInvalidRegistry, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON array", ErrInvalidRegistry)
	}
	for i := range devices {
		devices[i].Tags = numbersToFloat(devices[i].Tags)
		devices[i].Reported = numbersToFloat(devices[i].Reported)
	}
	return devices, ValidateRegistry(devices)
}

// numbersToFloat turns json.Number (kept by UseNumber so that huge
// integers are caught) into float64, the twin's number type.
func numbersToFloat(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	var conv func(v any) any
	conv = func(v any) any {
		switch v := v.(type) {
		case json.Number:
			f, _ := v.Float64()
			return f
		case map[string]any:
			for k, x := range v {
				v[k] = conv(x)
			}
		case []any:
			for i, x := range v {
				v[i] = conv(x)
			}
		}
		return v
	}
	return conv(m).(map[string]any)
}

// ValidateRegistry checks ids (non-empty, unique, at most 128 characters
// of the documented device-id set), behaviours and twin keys, naming the
// first offending entry.
func ValidateRegistry(devices []Device) error {
	if len(devices) == 0 {
		return fmt.Errorf("%w: no devices", ErrInvalidRegistry)
	}
	seen := make(map[string]int, len(devices))
	for i, d := range devices {
		where := fmt.Sprintf("device %d (%q)", i+1, d.DeviceID)
		if err := validDeviceID(d.DeviceID); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidRegistry, where, err)
		}
		if first, dup := seen[d.DeviceID]; dup {
			return fmt.Errorf("%w: %s: duplicate deviceId, first used by device %d", ErrInvalidRegistry, where, first)
		}
		seen[d.DeviceID] = i + 1
		switch d.Behaviour {
		case "", BehaviourOK, BehaviourFail, BehaviourUnhealthy:
		default:
			return fmt.Errorf("%w: %s: unknown behaviour %q (want ok, fail or unhealthy)", ErrInvalidRegistry, where, d.Behaviour)
		}
		for name, section := range map[string]map[string]any{"tags": d.Tags, "reported": d.Reported} {
			if err := checkTwinKeys(name, section, 1); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrInvalidRegistry, where, err)
			}
		}
	}
	return nil
}

// deviceIDSpecials are the non-alphanumeric characters the current IoT Hub
// docs allow in a device id.
const deviceIDSpecials = "-.%_*?!(),:=@$'"

func validDeviceID(id string) error {
	if id == "" || len(id) > 128 {
		return errors.New("deviceId must be 1 to 128 characters")
	}
	for _, c := range []byte(id) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && strings.IndexByte(deviceIDSpecials, c) < 0 {
			return fmt.Errorf("deviceId has the character %q; allowed are ASCII letters, digits and %s", c, deviceIDSpecials)
		}
	}
	return nil
}

// Tag values of the simulated fleet. Rings are weighted like a real staged
// rollout (few canaries, most devices in the broad ring).
var (
	tagSites  = []string{"paris", "lyon", "berlin", "austin", "osaka"}
	tagModels = []string{"tx100", "tx200", "rx9"}
)

// generateRegistry builds n devices dev-0001… with tags site, ring and
// model chosen deterministically from seed, so the same seed yields the
// same fleet (and the same job targets) on every run.
func generateRegistry(n int, seed uint64) []Device {
	width := max(4, len(fmt.Sprint(n)))
	devices := make([]Device, n)
	for i := range devices {
		id := fmt.Sprintf("dev-%0*d", width, i+1)
		h := hash64(seed, "registry", id)
		ring := "broad"
		switch r := h % 100; {
		case r < 5:
			ring = "canary"
		case r < 25:
			ring = "early"
		}
		devices[i] = Device{DeviceID: id, Tags: map[string]any{
			"site":  tagSites[(h>>8)%uint64(len(tagSites))],
			"ring":  ring,
			"model": tagModels[(h>>16)%uint64(len(tagModels))],
		}}
	}
	return devices
}

// hash64 is a deterministic FNV-1a hash of seed and parts; it decides tags
// and per-device outcomes so that runs repeat exactly.
func hash64(seed uint64, parts ...string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	// FNV alone mixes the low bits of similar ids poorly; the murmur3
	// finaliser spreads them so that h%100 is close to uniform.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// unitFloat maps a hash to [0, 1).
func unitFloat(h uint64) float64 { return float64(h>>11) / (1 << 53) }
