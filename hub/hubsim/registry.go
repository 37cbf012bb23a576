package hubsim

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
)

// device is one entry of the simulated identity registry.
type device struct {
	id   string
	tags map[string]string
}

// Tag values of the simulated fleet. Rings are weighted like a real staged
// rollout (few canaries, most devices in the broad ring).
var (
	tagSites  = []string{"paris", "lyon", "berlin", "austin", "osaka"}
	tagModels = []string{"tx100", "tx200", "rx9"}
)

// newRegistry builds n devices dev-0001… with tags site, ring and model
// chosen deterministically from seed, so the same seed yields the same
// fleet (and the same job targets) on every run.
func newRegistry(n int, seed uint64) []device {
	width := max(4, len(fmt.Sprint(n)))
	devices := make([]device, n)
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
		devices[i] = device{id: id, tags: map[string]string{
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
