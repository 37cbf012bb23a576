package hubsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PolicyName is the shared access policy the simulator's key belongs to.
const PolicyName = "iothubowner"

// Reasons a request's credentials are refused. The hub answers every one of
// them with the same 401 IotHubUnauthorizedAccess "Unauthorized"; the
// distinction exists for the simulator's own tests and logs.
var (
	errAuthMissing   = errors.New("no Authorization header")
	errAuthMalformed = errors.New("malformed SharedAccessSignature")
	errAuthResource  = errors.New("sr does not name this hub")
	errAuthPolicy    = errors.New("skn is not a policy of this hub")
	errAuthExpired   = errors.New("token expired")
	errAuthSignature = errors.New("signature mismatch")
)

const sasPrefix = "SharedAccessSignature "

// verifyAuthorization checks an Authorization header: a SAS token for this
// hub's policy, or the configured bearer token (a stand-in for Entra ID,
// which the simulator cannot validate for real).
func (s *Sim) verifyAuthorization(header string, now time.Time) error {
	if header == "" {
		return errAuthMissing
	}
	if s.opts.BearerToken != "" && strings.HasPrefix(header, "Bearer ") {
		if subtle.ConstantTimeCompare([]byte(strings.TrimPrefix(header, "Bearer ")), []byte(s.opts.BearerToken)) == 1 {
			return nil
		}
		return errAuthSignature
	}
	return verifySAS(header, s.opts.Hostname, s.opts.Key, now)
}

// verifySAS checks "SharedAccessSignature sr=…&sig=…&se=…&skn=…" the way
// docs/iothub.md §4 describes the service: fields in any order; the
// HMAC-SHA256 is recomputed over the RAW sr value as it appears in the token
// (not a decoded or re-encoded copy) + "\n" + se; sig is URL-decoded before
// comparison (Python leaves "/" unescaped, SDKs escape "+", "/" and "=");
// se is Unix seconds and must lie in the future.
func verifySAS(header, hostname string, key []byte, now time.Time) error {
	if !strings.HasPrefix(header, sasPrefix) {
		return errAuthMalformed
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(strings.TrimPrefix(header, sasPrefix), "&") {
		name, value, ok := strings.Cut(part, "=")
		if !ok || value == "" {
			return errAuthMalformed
		}
		if _, dup := fields[name]; dup {
			return errAuthMalformed
		}
		fields[name] = value
	}
	rawSR, sigField, seField, skn := fields["sr"], fields["sig"], fields["se"], fields["skn"]
	if rawSR == "" || sigField == "" || seField == "" || skn == "" {
		return errAuthMalformed
	}
	expiry, err := strconv.ParseInt(seField, 10, 64)
	if err != nil {
		return errAuthMalformed
	}
	// PathUnescape, not QueryUnescape: a literal "+" in a base64 signature
	// must stay a "+", not become a space.
	sigText, err := url.PathUnescape(sigField)
	if err != nil {
		return errAuthMalformed
	}
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		return errAuthMalformed
	}
	resource, err := url.QueryUnescape(rawSR)
	if err != nil {
		return errAuthMalformed
	}
	if !strings.EqualFold(strings.TrimSuffix(resource, "/"), hostname) {
		return errAuthResource
	}
	if skn != PolicyName {
		return errAuthPolicy
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(rawSR + "\n" + seField))
	if !hmac.Equal(mac.Sum(nil), sig) {
		return errAuthSignature
	}
	if now.Unix() >= expiry {
		return errAuthExpired
	}
	return nil
}
