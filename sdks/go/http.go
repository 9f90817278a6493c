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

// do sends one API request, retrying 429 (after Retry-After, except QUOTA_EXCEEDED, which no retry
// clears), 408, 5xx and network errors with exponential backoff. A POST carries an Idempotency-Key,
// the same on every attempt, so a retried creation whose first answer was lost returns the first
// result instead of creating a second job. extra is added to the per-attempt timeout (a long poll's wait).
// The answer's JSON is decoded into out when out is not nil.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out interface{}, extra time.Duration) error {
	var body []byte
	if in != nil {
		encoded, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("coexai: encoding the request: %w", err)
		}
		body = encoded
	}
	target := c.baseURL + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	idempotencyKey := ""
	if method == http.MethodPost {
		idempotencyKey = newIdempotencyKey()
	}
	for attempt := 0; ; attempt++ {
		status, header, answer, err := c.once(ctx, method, target, body, idempotencyKey, extra)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if attempt >= c.maxRetries {
				return fmt.Errorf("coexai: %s %s: %w", method, target, err)
			}
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return err
			}
			continue
		}
		if status >= 200 && status < 300 {
			if out == nil || status == http.StatusNoContent {
				return nil
			}
			if err := json.Unmarshal(answer, out); err != nil {
				return fmt.Errorf("coexai: decoding the answer to %s %s: %w", method, target, err)
			}
			return nil
		}
		apiError := newError(status, header, answer)
		if attempt >= c.maxRetries || !retryable(apiError) {
			return apiError
		}
		delay, ok := retryAfter(header)
		if !ok {
			delay = backoff(attempt)
		}
		if delay > maxRetryDelay {
			delay = maxRetryDelay
		}
		if err := sleep(ctx, delay); err != nil {
			return err
		}
	}
}

// once makes one attempt and reads its whole answer.
func (c *Client) once(ctx context.Context, method, target string, body []byte, idempotencyKey string, extra time.Duration) (int, http.Header, []byte, error) {
	attemptCtx, cancel := context.WithTimeout(ctx, c.timeout+extra)
	defer cancel()
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	request, err := http.NewRequestWithContext(attemptCtx, method, target, reader)
	if err != nil {
		return 0, nil, nil, err
	}
	request.Header.Set("Authorization", "Bearer "+c.apiKey)
	request.Header.Set("Accept", "application/json")
	request.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		request.Header.Set("Content-Type", "application/json")
	}
	if idempotencyKey != "" {
		request.Header.Set("Idempotency-Key", idempotencyKey)
	}
	response, err := c.httpClient.Do(request)
	if err != nil {
		return 0, nil, nil, err
	}
	defer response.Body.Close()
	limit := int64(math.MaxInt64)
	if response.StatusCode >= 300 {
		limit = maxErrorBodyBytes
	}
	answer, err := io.ReadAll(io.LimitReader(response.Body, limit))
	if err != nil {
		return 0, nil, nil, err
	}
	return response.StatusCode, response.Header, answer, nil
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
