package hubsim

import (
	"strings"
	"testing"
	"time"
)

// The parsers face whatever a client sends: they must refuse, never panic
// or loop, and what they accept must survive a second parse.

func FuzzParseCondition(f *testing.F) {
	for _, s := range []string{"*", "deviceId = 'a''b'", "deviceId IN ['a','b']", "tags.x = 'y' AND tags.z = 'w'", "deviceId IN [", "'", "tags."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := parseCondition(src)
		if err != nil {
			return
		}
		c.matches(device{id: "d", tags: map[string]string{"x": "y"}})
		if !c.all && len(c.preds) == 0 {
			t.Fatalf("%q accepted with no predicate", src)
		}
	})
}

func FuzzParseDeviceJobsQuery(f *testing.F) {
	for _, s := range []string{"SELECT * FROM devices.jobs", "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'it''s'", "select * from devices.jobs where devices.jobs.status='failed' and devices.jobs.jobId='x'", "SELECT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		q, err := parseDeviceJobsQuery(src)
		if err != nil {
			return
		}
		for field := range q.equals {
			if !strings.Contains(strings.Join(deviceJobsFields, ","), field) {
				t.Fatalf("%q accepted field %q", src, field)
			}
		}
	})
}

func FuzzVerifySAS(f *testing.F) {
	f.Add(vectorToken)
	f.Add("SharedAccessSignature sr=&sig=&se=&skn=")
	f.Add("SharedAccessSignature sr=a%ZZ&sig=%&se=1&skn=iothubowner")
	f.Fuzz(func(t *testing.T, header string) {
		err := verifySAS(header, vectorHost, testKey, time.Unix(1699990000, 0))
		if err == nil && header != vectorToken && !strings.Contains(header, "sig=") {
			t.Fatalf("accepted %q without a signature", header)
		}
	})
}
