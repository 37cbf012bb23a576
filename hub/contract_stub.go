package hub

// CONTRACT STUB — owned by the hub helper, who replaces this file with the
// real implementation spread over client.go, errors.go, auth.go, … Signatures
// below are the contract other packages compile against; keep them (add to
// them freely).

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Sentinels matched with errors.Is against *Error and transport failures.
var (
	ErrNotFound          = errors.New("hub: job not found")                    // 404 JobNotFound, or 200 with status unknown on GET
	ErrNotCancellable    = errors.New("hub: job not cancellable in its state") // OperationNotAllowedInCurrentState
	ErrThrottled         = errors.New("hub: throttled")                        // 429 (any Throttling* code)
	ErrUnauthorized      = errors.New("hub: unauthorized")                     // 401
	ErrConflict          = errors.New("hub: conflict or quota")                // 409, 403 quota codes
	ErrUnavailable       = errors.New("hub: unreachable or failing")           // transport errors, 5xx after retries
	ErrTimeout           = errors.New("hub: timed out")                        // attempt timeout / call budget exhausted
	ErrOutcomeUnknown    = errors.New("hub: cancel outcome unknown")           // POST sent, no answer; reconciled by GET
	ErrInvalidJobID      = errors.New("hub: invalid job id")                   // rejected before any request
	ErrInvalidConnString = errors.New("hub: invalid connection string")
)

// Error is the hub's answer to a failed call, parsed from either body format
// and the iothub-errorcode header.
type Error struct {
	Op          string // "GetJob", "CancelJob", …
	StatusCode  int
	Code        string // code name, e.g. "JobNotFound"
	NumericCode int    // e.g. 404002 when the hub sent one
	Message     string // human text after "ErrorCode:Name;"
	TrackingID  string
	RequestID   string        // x-ms-request-id
	RetryAfter  time.Duration // from Retry-After, 0 when absent
}

func (e *Error) Error() string { panic("stub") }

// Credential yields the Authorization header value for a request.
type Credential interface {
	Authorization(ctx context.Context) (string, error)
}

// ConnectionString is a parsed IoT Hub connection string.
type ConnectionString struct {
	HostName, SharedAccessKeyName, SharedAccessKey string
}

func ParseConnectionString(s string) (ConnectionString, error) { panic("stub") }

// NewSASCredential signs SAS tokens with the policy key (cached, renewed well before expiry).
func NewSASCredential(cs ConnectionString) (Credential, error) { panic("stub") }

// NewEntraCredential wraps an azidentity credential (scope https://iothubs.azure.net/.default).
func NewEntraCredential(tc azcore.TokenCredential) Credential { panic("stub") }

// Config configures a Client. Zero values get sensible defaults.
type Config struct {
	Host           string       // e.g. myhub.azure-devices.net
	Endpoint       string       // optional base-URL override, e.g. http://127.0.0.1:9000 (simulator)
	Credential     Credential   // required
	HTTPClient     *http.Client // optional; redirects are never followed
	AttemptTimeout time.Duration
	CallBudget     time.Duration
	MaxAttempts    int
	UserAgent      string // defaults to "hubjobs/<version>"
}

// Client talks to one hub's jobs API.
type Client struct{}

func New(cfg Config) (*Client, error)                                         { panic("stub") }
func (c *Client) Host() string                                                { panic("stub") }
func (c *Client) GetJob(ctx context.Context, id string) (*Job, error)         { panic("stub") }
func (c *Client) CancelJob(ctx context.Context, id string) (*Job, error)      { panic("stub") }
func (c *Client) CreateJob(ctx context.Context, req JobRequest) (*Job, error) { panic("stub") }
func (c *Client) QueryJobs(ctx context.Context, o QueryJobsOptions) (*JobsPage, error) {
	panic("stub")
}
func (c *Client) QueryDeviceJobs(ctx context.Context, jobID string, o PageOptions) (*DevicesPage, error) {
	panic("stub")
}

// ValidJobID reports whether id is safe to put in a hub URL and a query
// ([A-Za-z0-9_-], 1..128 chars by default).
func ValidJobID(id string) bool { panic("stub") }
