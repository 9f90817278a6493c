package coexai

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook is a webhook endpoint (the OpenAPI schema WebhookRead): where the service POSTs the events
// named in Events ("*" for all).
type Webhook struct {
	ID             string     `json:"id"`
	URL            string     `json:"url"`
	Events         []string   `json:"events"`
	Description    *string    `json:"description"`
	Enabled        bool       `json:"enabled"`
	DisabledReason *string    `json:"disabled_reason"`
	DisabledAt     *time.Time `json:"disabled_at"`
	Livemode       bool       `json:"livemode"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	// Ordering is how deliveries are ordered: "none" or "per_resource" (one resource's events in order).
	Ordering string `json:"ordering"`
	// CircuitState is "closed", "open" (after failed attempts in a row, deliveries wait until
	// CircuitRetryAt) or "half_open" (a probe attempt goes).
	CircuitState        string     `json:"circuit_state"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	CircuitRetryAt      *time.Time `json:"circuit_retry_at"`
}

// WebhookCreated is a new endpoint with its signing secret, which is shown this once (the OpenAPI
// schema WebhookCreated).
type WebhookCreated struct {
	// Secret ("whsec_...") verifies the endpoint's deliveries (Webhooks.Verify).
	Secret string `json:"secret"`
	Webhook
}

// WebhookCreateRequest is the body of POST /v1/webhooks (the OpenAPI schema WebhookCreate).
type WebhookCreateRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description *string  `json:"description,omitempty"`
	// Enabled: nil is the service's default (enabled).
	Enabled *bool `json:"enabled,omitempty"`
	// Ordering is "none" or "per_resource" ("": the service's default).
	Ordering string `json:"ordering,omitempty"`
}

// WebhookUpdateRequest is the body of PATCH /v1/webhooks/{id} (the OpenAPI schema WebhookUpdate): only
// the fields set change.
type WebhookUpdateRequest struct {
	URL         *string  `json:"url,omitempty"`
	Events      []string `json:"events,omitempty"`
	Description *string  `json:"description,omitempty"`
	Enabled     *bool    `json:"enabled,omitempty"`
	Ordering    *string  `json:"ordering,omitempty"`
}

// SecretRotated is an endpoint's new secret (the OpenAPI schema SecretRotated); the old one still signs
// deliveries until PreviousSecretExpiresAt.
type SecretRotated struct {
	Secret                  string    `json:"secret"`
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
}

// WebhookListParams pages Webhooks.List.
type WebhookListParams struct {
	// Limit is the page size (the service's default when 0).
	Limit int
}

// WebhooksService is the /v1/webhooks part of the API (Client.Webhooks), and verifies what the
// endpoints receive (Verify, ConstructEvent).
type WebhooksService struct {
	client *Client
}

// Create adds an endpoint (POST /v1/webhooks). Keep the answer's Secret: it is not shown again.
func (s *WebhooksService) Create(ctx context.Context, request WebhookCreateRequest, options ...RequestOption) (*WebhookCreated, error) {
	var created WebhookCreated
	if err := s.client.doCall(ctx, apply(call{method: "POST", path: "/webhooks", json: request}, options), &created); err != nil {
		return nil, err
	}
	return &created, nil
}

// Get returns an endpoint (GET /v1/webhooks/{id}).
func (s *WebhooksService) Get(ctx context.Context, id string) (*Webhook, error) {
	var webhook Webhook
	if err := s.client.do(ctx, "GET", "/webhooks/"+url.PathEscape(id), nil, nil, &webhook, 0); err != nil {
		return nil, err
	}
	return &webhook, nil
}

// List walks the organization's endpoints, a page at a time (GET /v1/webhooks).
func (s *WebhooksService) List(ctx context.Context, params WebhookListParams) *Iter[Webhook] {
	return listPages[Webhook](ctx, s.client, "/webhooks", nil, params.Limit)
}

// Update changes the fields set in request (PATCH /v1/webhooks/{id}).
func (s *WebhooksService) Update(ctx context.Context, id string, request WebhookUpdateRequest) (*Webhook, error) {
	var webhook Webhook
	if err := s.client.do(ctx, "PATCH", "/webhooks/"+url.PathEscape(id), nil, request, &webhook, 0); err != nil {
		return nil, err
	}
	return &webhook, nil
}

// Delete removes an endpoint (DELETE /v1/webhooks/{id}).
func (s *WebhooksService) Delete(ctx context.Context, id string) error {
	return s.client.do(ctx, "DELETE", "/webhooks/"+url.PathEscape(id), nil, nil, nil, 0)
}

// RotateSecret gives the endpoint a new secret (POST /v1/webhooks/{id}/rotate-secret).
func (s *WebhooksService) RotateSecret(ctx context.Context, id string) (*SecretRotated, error) {
	var rotated SecretRotated
	if err := s.client.do(ctx, "POST", "/webhooks/"+url.PathEscape(id)+"/rotate-secret", nil, nil, &rotated, 0); err != nil {
		return nil, err
	}
	return &rotated, nil
}

// DefaultWebhookTolerance is how far a Standard Webhooks timestamp may be from now (as Standard Webhooks
// and Svix use): an older request is taken for a replay.
const DefaultWebhookTolerance = 5 * time.Minute

// WebhookVerificationError says why a webhook request was refused. Code is one of MISSING_SIGNATURE,
// INVALID_SIGNATURE, TIMESTAMP_OUT_OF_RANGE, INVALID_SECRET and INVALID_PAYLOAD.
type WebhookVerificationError struct {
	Code    string
	Message string
}

func (e *WebhookVerificationError) Error() string {
	return "coexai: webhook refused: " + e.Code + ": " + e.Message
}

// WebhookEvent is a verified delivery's event: ID is the event's id (the webhook-id header; "" when
// only X-CoExAI-Signature came), Type and Data the body's, WebhookID the endpoint's.
type WebhookEvent struct {
	ID        string
	Type      string
	Data      map[string]interface{}
	Timestamp time.Time
	WebhookID string
}

// WebhookOption changes how Verify and ConstructEvent check a request.
type WebhookOption func(*webhookCheck)

type webhookCheck struct {
	tolerance time.Duration
	now       func() time.Time
}

// WithTolerance sets how far the webhook-timestamp may be from now (default DefaultWebhookTolerance).
func WithTolerance(tolerance time.Duration) WebhookOption {
	return func(c *webhookCheck) { c.tolerance = tolerance }
}

// Verify checks that payload (the request's raw body, as received) and headers are a delivery the
// service signed with secret, in either of its schemes:
//
//   - Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature "v1,<base64>", an HMAC-SHA256
//     of "id.timestamp.body" keyed with the secret's base64-decoded bytes; any of its space-separated
//     signatures may match, as during a secret rotation), with the timestamp within the tolerance;
//   - X-CoExAI-Signature "sha256=<hex>", an HMAC-SHA256 of the body keyed with the secret as text (the
//     platform guide's check), or X-CoExAI-Signature-Previous during a rotation.
//
// The Standard Webhooks headers decide when present (they also refuse a replay). It returns a
// *WebhookVerificationError when the request is refused. Header names are matched in any case.
func (s *WebhooksService) Verify(payload []byte, headers http.Header, secret string, options ...WebhookOption) error {
	return VerifyWebhook(payload, headers, secret, options...)
}

// ConstructEvent verifies the request (see Verify) and returns its event.
func (s *WebhooksService) ConstructEvent(payload []byte, headers http.Header, secret string, options ...WebhookOption) (*WebhookEvent, error) {
	return ConstructWebhookEvent(payload, headers, secret, options...)
}

// VerifyWebhook is Webhooks.Verify without a client, for a receiver that calls nothing else.
func VerifyWebhook(payload []byte, headers http.Header, secret string, options ...WebhookOption) error {
	check := webhookCheck{tolerance: DefaultWebhookTolerance, now: time.Now}
	for _, option := range options {
		option(&check)
	}
	if secret == "" {
		return &WebhookVerificationError{"INVALID_SECRET", "no webhook secret was given"}
	}
	if header(headers, "webhook-signature") != "" {
		return check.standard(payload, headers, secret)
	}
	signature := header(headers, "X-CoExAI-Signature")
	if signature == "" {
		return &WebhookVerificationError{"MISSING_SIGNATURE", "the request carries no signature"}
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(payload)
	expected := []byte("sha256=" + hex.EncodeToString(mac.Sum(nil)))
	for _, provided := range []string{signature, header(headers, "X-CoExAI-Signature-Previous")} {
		if provided != "" && hmac.Equal(expected, []byte(strings.TrimSpace(provided))) {
			return nil
		}
	}
	return &WebhookVerificationError{"INVALID_SIGNATURE", "X-CoExAI-Signature does not match"}
}

func (check webhookCheck) standard(payload []byte, headers http.Header, secret string) error {
	id, stamp := header(headers, "webhook-id"), header(headers, "webhook-timestamp")
	if id == "" || stamp == "" {
		return &WebhookVerificationError{"INVALID_SIGNATURE", "missing webhook-id or webhook-timestamp"}
	}
	sent, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		return &WebhookVerificationError{"INVALID_SIGNATURE", "invalid webhook-timestamp"}
	}
	if gap := check.now().Sub(time.Unix(sent, 0)); gap > check.tolerance || gap < -check.tolerance {
		return &WebhookVerificationError{"TIMESTAMP_OUT_OF_RANGE", "the webhook's timestamp is too old or too new"}
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return &WebhookVerificationError{"INVALID_SECRET", "the secret is not a whsec_ secret"}
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + stamp + "."))
	mac.Write(payload)
	expected := []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, candidate := range strings.Fields(header(headers, "webhook-signature")) {
		version, value, _ := strings.Cut(candidate, ",")
		if version == "v1" && hmac.Equal(expected, []byte(value)) {
			return nil
		}
	}
	return &WebhookVerificationError{"INVALID_SIGNATURE", "no webhook-signature matches"}
}

// ConstructWebhookEvent is Webhooks.ConstructEvent without a client.
func ConstructWebhookEvent(payload []byte, headers http.Header, secret string, options ...WebhookOption) (*WebhookEvent, error) {
	if err := VerifyWebhook(payload, headers, secret, options...); err != nil {
		return nil, err
	}
	var body struct {
		Event     string                 `json:"event"`
		Type      string                 `json:"type"`
		Timestamp string                 `json:"timestamp"`
		WebhookID string                 `json:"webhook_id"`
		Data      map[string]interface{} `json:"data"`
	}
	if err := json.Unmarshal(payload, &body); err != nil {
		return nil, &WebhookVerificationError{"INVALID_PAYLOAD", "the body is not a JSON object"}
	}
	event := &WebhookEvent{ID: header(headers, "webhook-id"), Type: body.Event, Data: body.Data, WebhookID: body.WebhookID}
	if event.Type == "" {
		event.Type = body.Type
	}
	if event.Type == "" {
		return nil, &WebhookVerificationError{"INVALID_PAYLOAD", "the body is not a webhook event"}
	}
	if event.Data == nil {
		event.Data = map[string]interface{}{}
	}
	if stamp, err := time.Parse(time.RFC3339Nano, body.Timestamp); err == nil {
		event.Timestamp = stamp
	}
	return event, nil
}

// header is a header's value whatever the case of its name in headers (a map built by hand may not be
// in Go's canonical form).
func header(headers http.Header, name string) string {
	if value := headers.Get(name); value != "" {
		return value
	}
	for key, values := range headers {
		if strings.EqualFold(key, name) && len(values) > 0 {
			return values[0]
		}
	}
	return ""
}
