package coexai

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mathrand "math/rand"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const (
	initialRetryDelay = 500 * time.Millisecond
	maxBackoffDelay   = 8 * time.Second
	maxRetryDelay     = 60 * time.Second
	maxErrorBodyBytes = 64 << 10
)

// call is one API request: what the client sends and what it does with the answer.
type call struct {
	method string
	// path is under the base URL ("/jobs"), or a whole URL when absolute (a pre-signed upload's).
	path     string
	absolute bool
	query    url.Values
	// json is encoded as the body; else body (when not nil) gives a fresh reader per attempt.
	json        interface{}
	body        func() (io.Reader, error)
	contentType string
	// length is body's size when known (sent as Content-Length rather than chunked: a bucket's
	// pre-signed URL refuses a PUT without it); 0 leaves it to net/http.
	length int64
	// idempotencyKey overrides the POST's own key (WithIdempotencyKey).
	idempotencyKey string
	// accept is the Accept header (default application/json).
	accept string
	// extra is added to the per-attempt timeout (a long poll's wait, an upload).
	extra time.Duration
}

// answer is a successful response: its status, headers and whole body.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends one API request (see send) and decodes its JSON answer into out when out is not nil.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out interface{}, extra time.Duration) error {
	return c.doCall(ctx, call{method: method, path: path, query: query, json: in, extra: extra}, out)
}

func (c *Client) doCall(ctx context.Context, request call, out interface{}) error {
	got, err := c.send(ctx, request)
	if err != nil {
		return err
	}
	if out == nil || got.status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(got.body, out); err != nil {
		return fmt.Errorf("coexai: decoding the answer to %s %s: %w", request.method, request.path, err)
	}
	return nil
}

// send sends one API request, retrying 429 (after Retry-After, except QUOTA_EXCEEDED, which no retry
// clears), 408, 5xx and network errors with exponential backoff. A POST carries an Idempotency-Key,
// the same on every attempt, so a retried creation whose first answer was lost returns the first
// result instead of creating a second job. body is called again for each attempt.
func (c *Client) send(ctx context.Context, request call) (*answer, error) {
	body := request.body
	contentType := request.contentType
	if request.json != nil {
		encoded, err := json.Marshal(request.json)
		if err != nil {
			return nil, fmt.Errorf("coexai: encoding the request: %w", err)
		}
		body = func() (io.Reader, error) { return bytes.NewReader(encoded), nil }
		contentType = "application/json"
	}
	target := request.path
	if !request.absolute {
		target = c.baseURL + request.path
	}
	if len(request.query) > 0 {
		target += "?" + request.query.Encode()
	}
	idempotencyKey := request.idempotencyKey
	if request.method == http.MethodPost && idempotencyKey == "" {
		idempotencyKey = newIdempotencyKey()
	}
	for attempt := 0; ; attempt++ {
		var reader io.Reader
		if body != nil {
			fresh, err := body()
			if err != nil {
				return nil, fmt.Errorf("coexai: %s %s: reading the body: %w", request.method, target, err)
			}
			reader = fresh
		}
		got, err := c.once(ctx, request, target, reader, contentType, idempotencyKey)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if attempt >= c.maxRetries {
				return nil, fmt.Errorf("coexai: %s %s: %w", request.method, target, err)
			}
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return nil, err
			}
			continue
		}
		if got.status >= 200 && got.status < 300 {
			return got, nil
		}
		apiError := newError(got.status, got.header, got.body)
		if attempt >= c.maxRetries || !retryable(apiError) {
			return nil, apiError
		}
		delay, ok := retryAfter(got.header)
		if !ok {
			delay = backoff(attempt)
		}
		if delay > maxRetryDelay {
			delay = maxRetryDelay
		}
		if err := sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

// once makes one attempt and reads its whole answer. A pre-signed URL (absolute) carries its own
// authorization, so the API key is not sent there.
func (c *Client) once(ctx context.Context, request call, target string, body io.Reader, contentType, idempotencyKey string) (*answer, error) {
	attemptCtx, cancel := context.WithTimeout(ctx, c.timeout+request.extra)
	defer cancel()
	outgoing, err := http.NewRequestWithContext(attemptCtx, request.method, target, body)
	if err != nil {
		return nil, err
	}
	if !request.absolute {
		outgoing.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	accept := request.accept
	if accept == "" {
		accept = "application/json"
	}
	outgoing.Header.Set("Accept", accept)
	outgoing.Header.Set("User-Agent", c.userAgent)
	if body != nil && contentType != "" {
		outgoing.Header.Set("Content-Type", contentType)
	}
	if body != nil && request.length > 0 {
		outgoing.ContentLength = request.length
	}
	if idempotencyKey != "" {
		outgoing.Header.Set("Idempotency-Key", idempotencyKey)
	}
	response, err := c.httpClient.Do(outgoing)
	if err != nil {
		return nil, err
	}
	defer response.Body.Close()
	limit := int64(math.MaxInt64)
	if response.StatusCode >= 300 {
		limit = maxErrorBodyBytes
	}
	read, err := io.ReadAll(io.LimitReader(response.Body, limit))
	if err != nil {
		return nil, err
	}
	return &answer{status: response.StatusCode, header: response.Header, body: read}, nil
}

func retryable(e *Error) bool {
	switch {
	case e.StatusCode == http.StatusTooManyRequests:
		return e.Code != "QUOTA_EXCEEDED" // the plan's quota: waiting a few seconds does not clear it
	case e.StatusCode == http.StatusRequestTimeout:
		return true
	default:
		return e.StatusCode >= 500
	}
}

// retryAfter reads Retry-After: seconds, or an HTTP date.
func retryAfter(header http.Header) (time.Duration, bool) {
	value := header.Get("Retry-After")
	if value == "" {
		return 0, false
	}
	if seconds, err := strconv.ParseFloat(value, 64); err == nil && seconds >= 0 {
		return time.Duration(seconds * float64(time.Second)), true
	}
	if when, err := http.ParseTime(value); err == nil {
		delay := time.Until(when)
		if delay < 0 {
			delay = 0
		}
		return delay, true
	}
	return 0, false
}

// backoff is 0.5 s, 1 s, 2 s, ... up to 8 s, each with up to a quarter more at random.
func backoff(attempt int) time.Duration {
	delay := maxBackoffDelay
	if attempt < 5 {
		delay = initialRetryDelay << uint(attempt)
		if delay > maxBackoffDelay {
			delay = maxBackoffDelay
		}
	}
	return delay + time.Duration(mathrand.Int63n(int64(delay)/4+1))
}

func sleep(ctx context.Context, delay time.Duration) error {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func newIdempotencyKey() string {
	var random [16]byte
	if _, err := rand.Read(random[:]); err != nil {
		// crypto/rand does not fail on the platforms Go supports; a time-based key still differs per request.
		return fmt.Sprintf("sdk_go_%d", time.Now().UnixNano())
	}
	return "sdk_go_" + hex.EncodeToString(random[:])
}
