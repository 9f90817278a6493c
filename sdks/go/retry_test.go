package coexai_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coexai/coexai-go"
)

// A loopback stand-in that answers 503, then 429 with Retry-After, then creates the job: the client
// retries both, waits as told, and sends one Idempotency-Key on all three attempts.
func TestCreateRetries5xxAnd429WithOneIdempotencyKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	var times []time.Time
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		times = append(times, time.Now())
		attempt := len(keys)
		mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/v1/jobs" || r.Header.Get("Authorization") != "Bearer key_1" {
			http.Error(w, "unexpected request "+r.Method+" "+r.URL.Path, http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch attempt {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"SERVICE_UNAVAILABLE","message":"try again","details":{},"request_id":"req_1"}}`))
		case 2:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"code":"RATE_LIMITED","message":"slow down","details":{},"request_id":"req_2"}}`))
		default:
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"job_1","agent_id":"test-noop","status":"queued","priority":5,"input_data":{},` +
				`"config":{},"file_ids":[],"output_data":null,"error":null,"attempts":0,"livemode":true,` +
				`"created_at":"2026-01-01T00:00:00Z","queued_at":null,"started_at":null,"finished_at":null,"status_reason":null}`))
		}
	}))
	defer server.Close()

	client := coexai.NewClient("key_1", coexai.WithBaseURL(server.URL+"/v1/"))
	job, err := client.Jobs.Create(context.Background(), coexai.JobCreateRequest{AgentID: "test-noop"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if job.ID != "job_1" || job.Status != coexai.JobStatusQueued || job.OutputData != nil {
		t.Fatalf("unexpected job %+v", job)
	}
	if len(keys) != 3 {
		t.Fatalf("%d attempts, want 3", len(keys))
	}
	if keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Fatalf("Idempotency-Keys %q: want one key on every attempt", keys)
	}
	if waited := times[2].Sub(times[1]); waited < time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After: 1", waited)
	}

	// Another POST gets another key.
	_, err = client.Jobs.Create(context.Background(), coexai.JobCreateRequest{AgentID: "test-noop"})
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if keys[3] == keys[0] {
		t.Fatalf("two creations shared the Idempotency-Key %q", keys[0])
	}
}

// Retries spent (or none allowed), and answers no retry clears, come back as a *coexai.Error.
func TestErrorsAreTypedAndQuotaIsNotRetried(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.Header().Set("X-Request-ID", "req_header")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"code":"QUOTA_EXCEEDED","message":"monthly quota used","details":{"limit":10},"request_id":null}}`))
	}))
	defer server.Close()

	client := coexai.NewClient("key_1", coexai.WithBaseURL(server.URL))
	_, err := client.Jobs.Get(context.Background(), "job_1")
	var apiError *coexai.Error
	if !errors.As(err, &apiError) {
		t.Fatalf("error %v (%T) is not a *coexai.Error", err, err)
	}
	if apiError.StatusCode != 429 || apiError.Code != "QUOTA_EXCEEDED" || apiError.Message != "monthly quota used" ||
		apiError.Details["limit"] != float64(10) || apiError.RequestID != "req_header" {
		t.Fatalf("unexpected error %+v", apiError)
	}
	if calls != 1 {
		t.Fatalf("QUOTA_EXCEEDED was tried %d times; no retry clears it", calls)
	}
}

// A body that is not the API's error shape (a proxy's page) still gives a *coexai.Error.
func TestErrorFromAForeignBody(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer server.Close()

	client := coexai.NewClient("key_1", coexai.WithBaseURL(server.URL), coexai.WithMaxRetries(0))
	_, err := client.Jobs.Get(context.Background(), "job_1")
	var apiError *coexai.Error
	if !errors.As(err, &apiError) || apiError.StatusCode != 502 || apiError.Code != "HTTP_502" || apiError.Message != "bad gateway\n" {
		t.Fatalf("unexpected error %#v", err)
	}
}
