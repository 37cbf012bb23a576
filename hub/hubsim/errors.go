package hubsim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// errorCode is an IoT Hub error: its name (sent in iothub-errorcode and
// after "ErrorCode:") and its six-digit number, whose first three digits
// are the HTTP status (troubleshoot-error-codes.md).
type errorCode struct {
	name   string
	number int
}

func (c errorCode) status() int { return c.number / 1000 }

var (
	codeGenericBadRequest           = errorCode{"GenericBadRequest", 400000}
	codeInvalidProtocolVersion      = errorCode{"InvalidProtocolVersion", 400001}
	codeArgumentInvalid             = errorCode{"ArgumentInvalid", 400004}
	codeUnauthorizedAccess          = errorCode{"IotHubUnauthorizedAccess", 401002}
	codeGenericNotFound             = errorCode{"GenericNotFound", 404000}
	codeJobNotFound                 = errorCode{"JobNotFound", 404002}
	codeGenericMethodNotAllowed     = errorCode{"GenericMethodNotAllowed", 405000}
	codeOperationNotAllowedInState  = errorCode{"OperationNotAllowedInCurrentState", 405102}
	codeJobAlreadyExists            = errorCode{"JobAlreadyExists", 409104}
	codePreconditionFailed          = errorCode{"PreconditionFailed", 412001}
	codeThrottling                  = errorCode{"ThrottlingException", 429001}
	codeThrottlingMaxActiveJobCount = errorCode{"ThrottlingMaxActiveJobCountExceeded", 429004}
	codeServerError                 = errorCode{"ServerError", 500001}
	codeServiceUnavailable          = errorCode{"ServiceUnavailable", 503001}
)

// errorFormat selects one of the body formats real hubs send, so that
// clients meet all of them from one simulator:
//   - formatA: {"Message":"ErrorCode:<Name>;<text>","ExceptionMessage":"Tracking ID:…"}
//     (most errors);
//   - formatNested: format A whose text embeds another format-A body, as
//     recorded for ThrottlingMaxActiveJobCountExceeded (C# SDK issue #361);
//   - formatB: Message is an escaped JSON object with a numeric errorCode
//     (used here for ThrottlingException).
type errorFormat int

const (
	formatA errorFormat = iota
	formatNested
	formatB
)

// hubError is a refusal rendered in the hub's error format.
type hubError struct {
	code       errorCode
	status     int // HTTP status; code.status() unless overridden
	text       string
	format     errorFormat
	retryAfter string // Retry-After value, empty for none
}

func newHubError(code errorCode, format string, args ...any) *hubError {
	return &hubError{code: code, status: code.status(), text: fmt.Sprintf(format, args...)}
}

// errorBody is both top-level formats: the hub always sends these two keys.
type errorBody struct {
	Message          string `json:"Message"`
	ExceptionMessage string `json:"ExceptionMessage"`
}

// formatBMessage is the object format B escapes into Message.
type formatBMessage struct {
	ErrorCode    int             `json:"errorCode"`
	TrackingID   string          `json:"trackingId"`
	Message      string          `json:"message"`
	Info         json.RawMessage `json:"info"`
	TimestampUtc hubTime         `json:"timestampUtc"`
}

// body renders the error with trackingID (32 hex digits plus the gateway
// suffix) stamped at now.
func (e *hubError) body(trackingID string, now time.Time) []byte {
	stamp := now.UTC().Format("01/02/2006 15:04:05")
	exception := "Tracking ID:" + trackingID + "-TimeStamp:" + stamp
	var b errorBody
	switch e.format {
	case formatNested:
		inner, _ := json.Marshal(errorBody{
			Message:          "ErrorCode:" + e.code.name + ";" + strconv.Itoa(e.status),
			ExceptionMessage: exception,
		})
		b = errorBody{
			Message:          "ErrorCode:" + e.code.name + ";Error: " + strconv.Itoa(e.status) + " " + string(inner),
			ExceptionMessage: exception,
		}
	case formatB:
		inner, _ := marshalJSON(formatBMessage{
			ErrorCode:    e.code.number,
			TrackingID:   trackingID + "-TimeStamp:" + stamp,
			Message:      e.text,
			Info:         json.RawMessage(`{}`),
			TimestampUtc: hubTime(now),
		})
		b = errorBody{Message: string(inner), ExceptionMessage: ""}
	default:
		b = errorBody{Message: "ErrorCode:" + e.code.name + ";" + e.text, ExceptionMessage: exception}
	}
	out, _ := marshalJSON(b)
	return out
}
