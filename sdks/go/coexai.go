// Package coexai is the Go client of the CoExAI platform API (/v1), as the platform guide shows it:
//
//	client := coexai.NewClient(apiKey)
//	job, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "maya", InputData: input})
//	result, err := client.Jobs.WaitForCompletion(ctx, job.ID)
//
// It uses the standard library only. Failed calls return a *Error (the API's error body, with the HTTP
// status); 429 (after Retry-After), 408, 5xx answers and network errors are retried with exponential
// backoff, and every POST carries one Idempotency-Key that stays the same across its retries.
package coexai

import (
	"net/http"
	"strings"
	"time"
)

// Version is this SDK's version (see CHANGELOG.md); it is sent in the User-Agent header.
const Version = "0.3.1"

// DefaultBaseURL is the platform API's address, the base of every path the client calls.
const DefaultBaseURL = "https://api.coexai.com/v1"

// Client calls the platform API with one API key. It is safe for concurrent use.
type Client struct {
	// Jobs creates, lists, reads, cancels, retries and waits for jobs.
	Jobs *JobsService
	// Files uploads (in one request or the three pre-signed steps), lists, reads and deletes files.
	Files *FilesService
	// Agents lists the agents and what their jobs take.
	Agents *AgentsService
	// Webhooks manages the webhook endpoints and verifies their deliveries.
	Webhooks *WebhooksService
	// Events lists and reads the organization's events.
	Events *EventsService

	apiKey     string
	baseURL    string
	httpClient *http.Client
	maxRetries int
	timeout    time.Duration
	userAgent  string
}

// Option configures a Client made by NewClient.
type Option func(*Client)

// WithBaseURL sets the API's base URL, for instance "http://127.0.0.1:8000/v1" (default DefaultBaseURL).
func WithBaseURL(baseURL string) Option {
	return func(c *Client) { c.baseURL = strings.TrimRight(baseURL, "/") }
}

// WithHTTPClient sets the *http.Client requests go through (default: a client of its own).
func WithHTTPClient(httpClient *http.Client) Option {
	return func(c *Client) { c.httpClient = httpClient }
}

// WithMaxRetries sets how many times a failed request is tried again (default 3; 0 never retries).
func WithMaxRetries(maxRetries int) Option {
	return func(c *Client) {
		if maxRetries >= 0 {
			c.maxRetries = maxRetries
		}
	}
}

// WithTimeout sets how long one attempt of a request may take (default 60 s). A long poll
// (Jobs.Get with a wait) gets its wait on top of it.
func WithTimeout(timeout time.Duration) Option {
	return func(c *Client) {
		if timeout > 0 {
			c.timeout = timeout
		}
	}
}

// WithUserAgent puts a product of the caller's before the SDK's own in the User-Agent header.
func WithUserAgent(product string) Option {
	return func(c *Client) { c.userAgent = product + " " + c.userAgent }
}

// NewClient returns a client that authenticates with apiKey (a "coexai_live_..." or "coexai_test_..." key).
func NewClient(apiKey string, options ...Option) *Client {
	c := &Client{
		apiKey:     apiKey,
		baseURL:    DefaultBaseURL,
		httpClient: &http.Client{},
		maxRetries: 3,
		timeout:    60 * time.Second,
		userAgent:  "coexai-go/" + Version,
	}
	for _, option := range options {
		option(c)
	}
	c.Jobs = &JobsService{client: c}
	c.Files = &FilesService{client: c}
	c.Agents = &AgentsService{client: c}
	c.Webhooks = &WebhooksService{client: c}
	c.Events = &EventsService{client: c}
	return c
}

// RequestOption changes one call, for instance WithIdempotencyKey.
type RequestOption func(*call)

// WithIdempotencyKey sends key as the call's Idempotency-Key instead of a new random one, so that the
// same creation sent again (by another process, after a crash) returns the first result instead of
// creating twice. Only POSTs carry a key.
func WithIdempotencyKey(key string) RequestOption {
	return func(c *call) { c.idempotencyKey = key }
}

func apply(request call, options []RequestOption) call {
	for _, option := range options {
		option(&request)
	}
	return request
}
