package hubsim

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The test vector of docs/iothub.md §4 (Go and Node agree on it).
const (
	vectorKey   = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	vectorHost  = "myhub.azure-devices.net"
	vectorToken = "SharedAccessSignature sr=myhub.azure-devices.net&sig=sJAIZTF5oG40VHrie96heZ865%2BnR4QavBvHnzxZm8rk%3D&se=1700000000&skn=iothubowner"
)

func TestSASReferenceVector(t *testing.T) {
	key, err := base64.StdEncoding.DecodeString(vectorKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := signSAS(key, vectorHost, 1700000000); got != vectorToken {
		t.Fatalf("test signer disagrees with the reference vector:\n got %s\nwant %s", got, vectorToken)
	}
	if err := verifySAS(vectorToken, vectorHost, key, time.Unix(1699999999, 0)); err != nil {
		t.Fatalf("reference vector refused: %v", err)
	}
	if err := verifySAS(vectorToken, vectorHost, key, time.Unix(1700000000, 0)); !errors.Is(err, errAuthExpired) {
		t.Fatalf("at se the token must be expired, got %v", err)
	}
}

func TestSASVerification(t *testing.T) {
	key, _ := base64.StdEncoding.DecodeString(vectorKey)
	before := time.Unix(1699990000, 0)
	sigOf := func(tok string) string { // the sig field, still URL-encoded
		_, rest, _ := strings.Cut(tok, "sig=")
		sig, _, _ := strings.Cut(rest, "&")
		return sig
	}
	vectorSig := sigOf(vectorToken)
	tests := []struct {
		name   string
		header string
		want   error
	}{
		{"reference vector", vectorToken, nil},
		{"fields in another order", "SharedAccessSignature skn=iothubowner&se=1700000000&sig=" + vectorSig + "&sr=myhub.azure-devices.net", nil},
		{"sig left unescaped like Python (+ and = raw)", "SharedAccessSignature sr=myhub.azure-devices.net&sig=sJAIZTF5oG40VHrie96heZ865+nR4QavBvHnzxZm8rk=&se=1700000000&skn=iothubowner", nil},
		{"hostname in other case", signSAS(key, "MyHub.Azure-Devices.net", 1700000000), nil},
		{"empty header", "", errAuthMalformed},
		{"basic auth", "Basic dXNlcjpwYXNz", errAuthMalformed},
		{"no skn", "SharedAccessSignature sr=myhub.azure-devices.net&sig=" + vectorSig + "&se=1700000000", errAuthMalformed},
		{"no sig", "SharedAccessSignature sr=myhub.azure-devices.net&se=1700000000&skn=iothubowner", errAuthMalformed},
		{"empty field", "SharedAccessSignature sr=&sig=" + vectorSig + "&se=1700000000&skn=iothubowner", errAuthMalformed},
		{"duplicate se", vectorToken + "&se=1800000000", errAuthMalformed},
		{"se not a number", strings.Replace(vectorToken, "se=1700000000", "se=soon", 1), errAuthMalformed},
		{"sig not base64", strings.Replace(vectorToken, vectorSig, "%%%", 1), errAuthMalformed},
		{"signature by another key", signSAS([]byte("another key entirely"), vectorHost, 1700000000), errAuthSignature},
		{"se changed after signing", strings.Replace(vectorToken, "se=1700000000", "se=1800000000", 1), errAuthSignature},
		{"sr re-encoded after signing", strings.Replace(vectorToken, "sr=myhub.azure-devices.net", "sr=myhub%2Eazure-devices.net", 1), errAuthSignature},
		{"other hub", signSAS(key, "otherhub.azure-devices.net", 1700000000), errAuthResource},
		{"device-scoped resource", signSAS(key, vectorHost+"/devices/d1", 1700000000), errAuthResource},
		{"other policy", strings.Replace(vectorToken, "skn=iothubowner", "skn=registryRead", 1), errAuthPolicy},
		{"expired", signSAS(key, vectorHost, before.Unix()-1), errAuthExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := verifySAS(tt.header, vectorHost, key, before); !errors.Is(err, tt.want) {
				t.Fatalf("verifySAS = %v, want %v", err, tt.want)
			}
		})
	}
}

// Every credential problem is the same 401 on the wire.
func TestUnauthorizedRequests(t *testing.T) {
	h := newHarness(t, Options{BearerToken: "entra-stand-in"})
	h.create("job1", methodJob("job1", "*"))
	now := h.clock.Now()
	tests := []struct {
		name, auth string
		want       int
	}{
		{"valid SAS", h.token(), http.StatusOK},
		{"valid bearer", "Bearer entra-stand-in", http.StatusOK},
		{"missing", "", http.StatusUnauthorized},
		{"malformed", "SharedAccessSignature nonsense", http.StatusUnauthorized},
		{"bad signature", signSAS([]byte("wrong"), h.sim.Hostname(), now.Add(time.Hour).Unix()), http.StatusUnauthorized},
		{"expired", signSAS(testKey, h.sim.Hostname(), now.Add(-time.Second).Unix()), http.StatusUnauthorized},
		{"wrong sr", signSAS(testKey, "elsewhere.azure-devices.net", now.Add(time.Hour).Unix()), http.StatusUnauthorized},
		{"wrong skn", strings.Replace(h.token(), "skn=iothubowner", "skn=service", 1), http.StatusUnauthorized},
		{"wrong bearer", "Bearer guess", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, call := range []struct{ method, path, body string }{
				{http.MethodGet, "/jobs/v2/job1", ""},
				{http.MethodGet, "/jobs/v2/query", ""},
				{http.MethodPost, "/devices/query", `{"query":"SELECT * FROM devices.jobs"}`},
			} {
				r := h.do(call.method, call.path, call.body, "Authorization", tt.auth)
				if tt.want == http.StatusOK {
					wantOK(t, r)
					continue
				}
				if got := wantError(t, r, http.StatusUnauthorized, "IotHubUnauthorizedAccess", ""); got != "Unauthorized" {
					t.Errorf("%s %s: text %q, want the hub's uninformative Unauthorized", call.method, call.path, got)
				}
			}
		})
	}
	// An expired token stays refused even for a cancel, which must not happen.
	r := h.do(http.MethodPost, "/jobs/v2/job1/cancel", "", "Authorization", signSAS(testKey, h.sim.Hostname(), now.Unix()))
	wantError(t, r, http.StatusUnauthorized, "IotHubUnauthorizedAccess", "Unauthorized")
	if st := h.get("job1")["status"]; st != "queued" {
		t.Errorf("refused cancel changed the job to %v", st)
	}
}

func TestAPIVersion(t *testing.T) {
	h := newHarness(t, Options{})
	for _, v := range []string{"2021-04-12", "2020-09-30", "2024-03-31"} {
		wantOK(t, h.do(http.MethodGet, "/jobs/v2/query?api-version="+v, ""))
	}
	for _, path := range []string{
		"/jobs/v2/query?api-version=",
		"/jobs/v2/query?api-version=2018-06-30",
		"/jobs/v2/query?api-version=2021-04-12-preview",
		"/jobs/v2/query?jobType=scheduleUpdateTwin&api-version=latest",
		"/jobs/v2/x/cancel?api-version=1",
	} {
		method := http.MethodGet
		if strings.HasSuffix(strings.Split(path, "?")[0], "cancel") {
			method = http.MethodPost
		}
		wantError(t, h.do(method, path, ""), http.StatusBadRequest, "InvalidProtocolVersion", "BadRequest")
	}
	// No api-version at all: build the request by hand, since do adds one.
	req, _ := http.NewRequest(http.MethodGet, h.url+"/jobs/v2/query", nil)
	req.Header.Set("Authorization", h.token())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("iothub-errorcode") != "InvalidProtocolVersion" {
		t.Errorf("missing api-version: %d %s", res.StatusCode, res.Header.Get("iothub-errorcode"))
	}
}
