package hubsim

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The parsers face whatever a client sends: they must refuse, never panic
// or loop, and what they accept must survive a second parse.

// FuzzWhere: any text either fails with a *QueryError or parses into a tree
// that prints back to text parsing into the same tree, and evaluates
// without panicking.
func FuzzWhere(f *testing.F) {
	for _, s := range []string{
		"*", `deviceId = 'a\'b'`, "deviceId = 'a''b'", "deviceId IN ['a','b']", "tags.x = 'y' AND tags.z = 'w'",
		"NOT (tags.a > 1 OR properties.reported.b <= -2.5e3) AND IS_DEFINED(properties.desired.c)",
		"tags.[[group]] NIN [0x1F, true, null, \"q\\\"\"]", `deviceId = '\u00e9'`, "deviceId IN [", "'", "tags.", "((", "1 = 1",
		"NOT STARTSWITH(devices.tags.x, 'a\\'b') OR startswith(deviceId, \"\")", "STARTSWITH(", "STARTSWITH(deviceId, 1)",
	} {
		f.Add(s)
	}
	fleet := grammarFleet()
	f.Fuzz(func(t *testing.T, src string) {
		c, err := parseCondition(src)
		if err != nil {
			var qe *QueryError
			if !errors.As(err, &qe) || qe.Pos < 1 || qe.Pos > utf8.RuneCountInString(src)+1 {
				t.Fatalf("%q: error %v has no position inside the input", src, err)
			}
			return
		}
		for i := range fleet {
			c.matches(&fleet[i])
		}
		if c.all {
			return
		}
		printed := c.where.String()
		again, err := parseWhere(printed, twinScope)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", src, printed, err)
		}
		if again.String() != printed {
			t.Fatalf("%q: print %q, reprint %q", src, printed, again.String())
		}
	})
}

func FuzzParseDevicesQuery(f *testing.F) {
	for _, s := range []string{
		"SELECT * FROM devices", "SELECT deviceId FROM devices WHERE tags.x = 'y'", "SELECT COUNT() AS numberOfDevices FROM devices WHERE NOT tags.a = 1",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'it\\'s'", "select deviceId, tags.a.b as ab from devices", "SELECT",
	} {
		f.Add(s)
	}
	fleet := grammarFleet()
	f.Fuzz(func(t *testing.T, src string) {
		q, err := parseDevicesQuery(src)
		if err != nil || q.where == nil || q.kind == queryDeviceJobs {
			return
		}
		for i := range fleet {
			q.where.eval(&fleet[i])
			twinResult(q, &fleet[i])
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
