package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

const (
	vectorKey   = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	vectorToken = "SharedAccessSignature sr=myhub.azure-devices.net&sig=sJAIZTF5oG40VHrie96heZ865%2BnR4QavBvHnzxZm8rk%3D&se=1700000000&skn=iothubowner"
)

func TestSignSASMatchesReferenceVector(t *testing.T) {
	key, err := decodeKey(vectorKey)
	if err != nil {
		t.Fatal(err)
	}
	got := SignSAS("myhub.azure-devices.net", "iothubowner", key, time.Unix(1700000000, 0))
	if got != vectorToken {
		t.Errorf("SignSAS =\n %s\nwant\n %s", got, vectorToken)
	}
}

func TestParseConnectionString(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ConnectionString
		wantErr []string // substrings the error must contain
	}{
		{
			name: "service policy, key ending in = split on the first = only",
			in:   "HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + vectorKey,
			want: ConnectionString{"myhub.azure-devices.net", "iothubowner", vectorKey},
		},
		{
			name: "trailing semicolon, spaces and key order",
			in:   " SharedAccessKey=" + vectorKey + "; HostName=h.example ;SharedAccessKeyName=p;",
			want: ConnectionString{"h.example", "p", vectorKey},
		},
		{
			name: "simulator host with port",
			in:   "HostName=127.0.0.1:9000;SharedAccessKeyName=p;SharedAccessKey=" + vectorKey,
			want: ConnectionString{"127.0.0.1:9000", "p", vectorKey},
		},
		{name: "empty", in: "", wantErr: []string{"empty"}},
		{name: "blank", in: "  ", wantErr: []string{"empty"}},
		{name: "not key=value", in: "garbage", wantErr: []string{"part 1 is not key=value", "HostName is missing"}},
		{
			name:    "everything missing is named at once",
			in:      "HostName=h.example",
			wantErr: []string{"SharedAccessKeyName is missing", "SharedAccessKey is missing"},
		},
		{name: "empty value", in: "HostName=;SharedAccessKeyName=p;SharedAccessKey=" + vectorKey, wantErr: []string{"HostName is missing"}},
		{name: "typo key", in: "Hostname=h;SharedAccessKeyName=p;SharedAccessKey=" + vectorKey, wantErr: []string{`unknown key "Hostname"`}},
		{name: "duplicate", in: "HostName=a;HostName=b;SharedAccessKeyName=p;SharedAccessKey=" + vectorKey, wantErr: []string{"HostName appears twice"}},
		{name: "key not base64", in: "HostName=h;SharedAccessKeyName=p;SharedAccessKey=not*base64", wantErr: []string{"SharedAccessKey is not base64"}},
		{name: "host with path", in: "HostName=evil.example/x;SharedAccessKeyName=p;SharedAccessKey=" + vectorKey, wantErr: []string{"not a host name"}},
		{name: "host with user", in: "HostName=a@b;SharedAccessKeyName=p;SharedAccessKey=" + vectorKey, wantErr: []string{"not a host name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnectionString(tt.in)
			if len(tt.wantErr) == 0 {
				if err != nil || got != tt.want {
					t.Fatalf("ParseConnectionString = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConnString) {
				t.Fatalf("err = %v, want ErrInvalidConnString", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), vectorKey) {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}

// newManualClock is the clock of the hub's unit tests: a fixed instant far
// from any real token's lifetime.
func newManualClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
}

func TestSASCredentialCachesAndRenewsBeforeExpiry(t *testing.T) {
	clock := newManualClock()
	cs := ConnectionString{"myhub.azure-devices.net", "iothubowner", vectorKey}
	cred, err := NewSASCredentialWithOptions(cs, SASOptions{TTL: time.Hour, RenewBefore: 15 * time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, _ := cred.Authorization(ctx)
	key, _ := decodeKey(vectorKey)
	if want := SignSAS(cs.HostName, cs.SharedAccessKeyName, key, clock.Now().Add(time.Hour)); first != want {
		t.Fatalf("first token = %s, want %s", first, want)
	}
	clock.Advance(44 * time.Minute)
	if again, _ := cred.Authorization(ctx); again != first {
		t.Errorf("token renewed after 44 min of 60; want the cached one until 15 min before expiry")
	}
	clock.Advance(time.Minute)
	renewed, _ := cred.Authorization(ctx)
	if renewed == first || !strings.Contains(renewed, "se=") {
		t.Errorf("token not renewed 15 min before expiry")
	}
}

func TestSASCredentialConcurrentUse(t *testing.T) {
	cred, err := NewSASCredential(ConnectionString{"h.example", "p", vectorKey})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	tokens := make([]string, 50)
	for i := range tokens {
		wg.Go(func() { tokens[i], _ = cred.Authorization(context.Background()) })
	}
	wg.Wait()
	for _, tok := range tokens {
		if tok != tokens[0] {
			t.Fatalf("concurrent callers got different tokens")
		}
	}
}

func TestNewSASCredentialRejectsIncompleteStrings(t *testing.T) {
	for _, cs := range []ConnectionString{{}, {"h", "p", ""}, {"h", "p", "***"}} {
		if _, err := NewSASCredential(cs); !errors.Is(err, ErrInvalidConnString) {
			t.Errorf("NewSASCredential(%+v) err = %v, want ErrInvalidConnString", cs, err)
		}
	}
}

// fakeTokenCredential counts GetToken calls and checks the scope.
type fakeTokenCredential struct {
	t       *testing.T
	calls   atomic.Int32
	expires time.Time
	err     error
}

func (f *fakeTokenCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.calls.Add(1)
	if len(o.Scopes) != 1 || o.Scopes[0] != "https://iothubs.azure.net/.default" {
		f.t.Errorf("scopes = %v", o.Scopes)
	}
	time.Sleep(time.Millisecond) // let concurrent callers pile up on the flight
	if f.err != nil {
		return azcore.AccessToken{}, f.err
	}
	return azcore.AccessToken{Token: "tok" + string(rune('0'+f.calls.Load())), ExpiresOn: f.expires}, nil
}

func TestEntraCredential(t *testing.T) {
	clock := newManualClock()
	fake := &fakeTokenCredential{t: t, expires: clock.Now().Add(time.Hour)}
	cred := NewEntraCredential(fake).(*EntraCredential)
	cred.now = clock.Now

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			got, err := cred.Authorization(context.Background())
			if err != nil || got != "Bearer tok1" {
				t.Errorf("Authorization = %q, %v", got, err)
			}
		})
	}
	wg.Wait()
	if n := fake.calls.Load(); n != 1 {
		t.Errorf("GetToken called %d times for 20 concurrent callers, want 1", n)
	}
	clock.Advance(56 * time.Minute) // within 5 min of expiry: renew
	if got, _ := cred.Authorization(context.Background()); got != "Bearer tok2" {
		t.Errorf("after renewal got %q", got)
	}

	failing := NewEntraCredential(&fakeTokenCredential{t: t, err: errors.New("no identity")})
	if _, err := failing.Authorization(context.Background()); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("failed token fetch err = %v, want ErrUnauthorized", err)
	}
}

// TestConnectionStringNeverPrintsItsKey: a parsed connection string that
// reaches a log line or an error through fmt (%v, %+v, %#v, %s) shows the
// host and policy but never the key: a secret never goes to a log.
func TestConnectionStringNeverPrintsItsKey(t *testing.T) {
	cs, err := ParseConnectionString("HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + vectorKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(verb, cs)
		if strings.Contains(got, vectorKey) || strings.Contains(got, cs.SharedAccessKey) {
			t.Errorf("%s prints the key: %s", verb, got)
		}
		if !strings.Contains(got, "myhub.azure-devices.net") || !strings.Contains(got, "iothubowner") {
			t.Errorf("%s no longer says which hub and policy: %s", verb, got)
		}
	}
}
