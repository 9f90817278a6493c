package coexai

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is a failed call's answer: the HTTP status and the API's error body
// ({"error": {"code", "message", "details", "request_id"}}). Use errors.As to get it.
type Error struct {
	// StatusCode is the HTTP status, for instance 404.
	StatusCode int
	// Code is the API's error code, for instance "NOT_FOUND" (or "HTTP_<status>" when the body had none).
	Code string
	// Message is the API's explanation, for people.
	Message string
	// Details carries what the code's documentation says it carries (for instance the invalid fields).
	Details map[string]interface{}
	// RequestID identifies the request in the service's logs (the body's, else the X-Request-ID header).
	RequestID string
}

func (e *Error) Error() string {
	text := fmt.Sprintf("coexai: %d %s: %s", e.StatusCode, e.Code, e.Message)
	if e.RequestID != "" {
		text += " (request " + e.RequestID + ")"
	}
	return text
}

// errorBody is the API's error shape (the OpenAPI document's PlatformErrorBody, under "error").
type errorBody struct {
	Error *struct {
		Code      string                 `json:"code"`
		Message   string                 `json:"message"`
		Details   map[string]interface{} `json:"details"`
		RequestID *string                `json:"request_id"`
	} `json:"error"`
}

func newError(status int, header http.Header, body []byte) *Error {
	e := &Error{StatusCode: status, Code: fmt.Sprintf("HTTP_%d", status), Details: map[string]interface{}{}}
	var parsed errorBody
	if json.Unmarshal(body, &parsed) == nil && parsed.Error != nil {
		if parsed.Error.Code != "" {
			e.Code = parsed.Error.Code
		}
		e.Message = parsed.Error.Message
		if parsed.Error.Details != nil {
			e.Details = parsed.Error.Details
		}
		if parsed.Error.RequestID != nil {
			e.RequestID = *parsed.Error.RequestID
		}
	}
	if e.Message == "" {
		e.Message = truncate(string(body), 500)
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
	}
	if e.RequestID == "" {
		e.RequestID = header.Get("X-Request-ID")
	}
	return e
}

func truncate(text string, n int) string {
	if len(text) <= n {
		return text
	}
	return text[:n]
}
