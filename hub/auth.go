package hub

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"golang.org/x/sync/singleflight"
)

// Credential yields the Authorization header value for a request. It is
// asked once per attempt, so an implementation must be cheap when its token
// is still good, and safe for concurrent use.
type Credential interface {
	Authorization(ctx context.Context) (string, error)
}

// ConnectionString is a parsed IoT Hub connection string.
type ConnectionString struct {
	HostName, SharedAccessKeyName, SharedAccessKey string
}

// connStringKeys are the keys a service or device connection string may
// carry; any other key is a typo worth reporting rather than ignoring.
var connStringKeys = map[string]bool{
	"HostName": true, "SharedAccessKeyName": true, "SharedAccessKey": true,
	"DeviceId": true, "ModuleId": true, "GatewayHostName": true, "SharedAccessSignature": true,
}

// ParseConnectionString parses "HostName=…;SharedAccessKeyName=…;SharedAccessKey=…".
// Each part is split on its first "=" only, because base64 keys end in "=".
// Every problem is reported at once, naming the missing or bad keys; the
// key itself never appears in an error.
func ParseConnectionString(s string) (ConnectionString, error) {
	if strings.TrimSpace(s) == "" {
		return ConnectionString{}, fmt.Errorf("%w: it is empty", ErrInvalidConnString)
	}
	fields := map[string]string{}
	var problems []string
	for i, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue // a trailing ";" is common and harmless
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok || k == "":
			problems = append(problems, fmt.Sprintf("part %d is not key=value", i+1))
		case !connStringKeys[k]:
			problems = append(problems, fmt.Sprintf("unknown key %q", clip(k, 40)))
		case fields[k] != "":
			problems = append(problems, fmt.Sprintf("%s appears twice", k))
		default:
			fields[k] = strings.TrimSpace(v)
		}
	}
	cs := ConnectionString{
		HostName:            fields["HostName"],
		SharedAccessKeyName: fields["SharedAccessKeyName"],
		SharedAccessKey:     fields["SharedAccessKey"],
	}
	for _, k := range []string{"HostName", "SharedAccessKeyName", "SharedAccessKey"} {
		if fields[k] == "" {
			problems = append(problems, k+" is missing")
		}
	}
	if cs.HostName != "" && !validHostName(cs.HostName) {
		problems = append(problems, fmt.Sprintf("HostName %q is not a host name", clip(cs.HostName, 80)))
	}
	if cs.SharedAccessKey != "" {
		if _, err := decodeKey(cs.SharedAccessKey); err != nil {
			problems = append(problems, "SharedAccessKey is not base64")
		}
	}
	if len(problems) > 0 {
		return ConnectionString{}, fmt.Errorf("%w: %s", ErrInvalidConnString, strings.Join(problems, "; "))
	}
	return cs, nil
}

// String renders the connection string with the key replaced by "***":
// a value that reaches a log line or an error through fmt must not carry
// the hub's key (a secret never goes to a log). Nothing needs the full string back.
func (cs ConnectionString) String() string {
	return "HostName=" + cs.HostName + ";SharedAccessKeyName=" + cs.SharedAccessKeyName + ";SharedAccessKey=***"
}

// GoString keeps %#v from printing the key too.
func (cs ConnectionString) GoString() string {
	return fmt.Sprintf("hub.ConnectionString{HostName:%q, SharedAccessKeyName:%q, SharedAccessKey:\"***\"}", cs.HostName, cs.SharedAccessKeyName)
}

// validHostName accepts DNS names and host:port (simulators), nothing that
// could smuggle a path, a user or a scheme into the request URL.
func validHostName(h string) bool {
	if len(h) > 253+6 {
		return false
	}
	host := h
	if name, port, ok := strings.Cut(h, ":"); ok {
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return false
		}
		host = name
	}
	if host == "" {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

func decodeKey(k string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(k)
	}
	if err == nil && len(key) == 0 {
		err = fmt.Errorf("empty key")
	}
	return key, err
}

// SignSAS returns the Authorization header value for resourceURI signed
// with key, valid until expiry:
//
//	SharedAccessSignature sr=<urlenc(uri)>&sig=<urlenc(b64(HMAC-SHA256(key, urlenc(uri)+"\n"+se)))>&se=<unix>&skn=<policy>
//
// The string signed is the URL-encoded sr exactly as it appears in the
// token, which is what the hub recomputes.
func SignSAS(resourceURI, keyName string, key []byte, expiry time.Time) string {
	sr := url.QueryEscape(resourceURI)
	se := strconv.FormatInt(expiry.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(sr + "\n" + se))
	sig := url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return "SharedAccessSignature sr=" + sr + "&sig=" + sig + "&se=" + se + "&skn=" + url.QueryEscape(keyName)
}

// SASOptions tune a SASCredential. Zero values get the defaults.
type SASOptions struct {
	TTL         time.Duration    // token lifetime; default 1 h, as the Node and Python SDKs
	RenewBefore time.Duration    // renew this long before expiry; default TTL/4
	Now         func() time.Time // default time.Now
}

// SASCredential signs SAS tokens for a hub's shared access policy. A token
// is reused until RenewBefore its expiry, well before it lapses, so that a
// request in flight, a retry or a clock a little off from the hub's never
// carries an expired token; signing per request would also work but is
// wasted HMACs on every poll.
type SASCredential struct {
	resourceURI, keyName string
	key                  []byte
	ttl, renewBefore     time.Duration
	now                  func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewSASCredential signs SAS tokens with the policy key (cached, renewed well before expiry).
func NewSASCredential(cs ConnectionString) (Credential, error) {
	return NewSASCredentialWithOptions(cs, SASOptions{})
}

// NewSASCredentialWithOptions is NewSASCredential with a lifetime and a
// clock, for tests and for hubs whose policy wants shorter tokens.
func NewSASCredentialWithOptions(cs ConnectionString, o SASOptions) (*SASCredential, error) {
	if cs.HostName == "" || cs.SharedAccessKeyName == "" || cs.SharedAccessKey == "" {
		return nil, fmt.Errorf("%w: SAS needs HostName, SharedAccessKeyName and SharedAccessKey", ErrInvalidConnString)
	}
	key, err := decodeKey(cs.SharedAccessKey)
	if err != nil {
		return nil, fmt.Errorf("%w: SharedAccessKey is not base64", ErrInvalidConnString)
	}
	if o.TTL <= 0 {
		o.TTL = time.Hour
	}
	if o.RenewBefore <= 0 || o.RenewBefore >= o.TTL {
		o.RenewBefore = o.TTL / 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &SASCredential{
		resourceURI: cs.HostName, keyName: cs.SharedAccessKeyName, key: key,
		ttl: o.TTL, renewBefore: o.RenewBefore, now: o.Now,
	}, nil
}

// Authorization returns the cached token, signing a new one when the cached
// one is within RenewBefore of its expiry.
func (c *SASCredential) Authorization(context.Context) (string, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" || !now.Before(c.expires.Add(-c.renewBefore)) {
		c.expires = now.Add(c.ttl).Truncate(time.Second)
		c.token = SignSAS(c.resourceURI, c.keyName, c.key, c.expires)
	}
	return c.token, nil
}

// EntraScope is the token scope of IoT Hub's data plane.
const EntraScope = "https://iothubs.azure.net/.default"

// entraRenewBefore: a token this close to expiry is replaced before use.
const entraRenewBefore = 5 * time.Minute

// entraFetchTimeout bounds one shared token fetch, which runs detached from
// the caller that started it so that one caller going away does not fail
// the others waiting on the same fetch.
const entraFetchTimeout = 30 * time.Second

// EntraCredential asks an azcore.TokenCredential (usually azidentity's
// DefaultAzureCredential) for IoT Hub bearer tokens. azidentity caches
// tokens itself; this keeps its own copy anyway so the per-attempt path is a
// mutex read instead of a trip through MSAL, and coalesces concurrent
// refreshes into one.
type EntraCredential struct {
	tc  azcore.TokenCredential
	now func() time.Time
	sf  singleflight.Group

	mu    sync.Mutex
	token azcore.AccessToken
}

// NewEntraCredential wraps an azidentity credential (scope https://iothubs.azure.net/.default).
func NewEntraCredential(tc azcore.TokenCredential) Credential {
	return &EntraCredential{tc: tc, now: time.Now}
}

// Authorization returns "Bearer <token>".
func (c *EntraCredential) Authorization(ctx context.Context) (string, error) {
	if tok, ok := c.cached(); ok {
		return "Bearer " + tok, nil
	}
	ch := c.sf.DoChan("token", func() (any, error) {
		if tok, ok := c.cached(); ok {
			return tok, nil
		}
		fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), entraFetchTimeout)
		defer cancel()
		at, err := c.tc.GetToken(fetchCtx, policy.TokenRequestOptions{Scopes: []string{EntraScope}})
		if err != nil {
			return "", fmt.Errorf("%w: Entra ID token for IoT Hub: %w", ErrUnauthorized, err)
		}
		c.mu.Lock()
		c.token = at
		c.mu.Unlock()
		return at.Token, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return "Bearer " + r.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *EntraCredential) cached() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token.Token == "" || !c.now().Before(c.token.ExpiresOn.Add(-entraRenewBefore)) {
		return "", false
	}
	return c.token.Token, true
}
