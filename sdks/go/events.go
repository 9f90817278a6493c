package coexai

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// Event is something that happened in the organization (the OpenAPI schema EventRead), as GET
// /v1/events lists it and webhooks deliver it: Type is for instance "job.completed", Data the object
// it is about.
type Event struct {
	ID        string                 `json:"id"`
	Type      string                 `json:"type"`
	Data      map[string]interface{} `json:"data"`
	Livemode  bool                   `json:"livemode"`
	CreatedAt time.Time              `json:"created_at"`
}

// EventListParams filters Events.List; zero values do not filter.
type EventListParams struct {
	Type          string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// DeliverySuccess filters by the outcome of the event's webhook deliveries (nil: no filter).
	DeliverySuccess *bool
	// Limit is the page size (the service's default when 0).
	Limit int
}

// EventsService is the /v1/events part of the API (Client.Events).
type EventsService struct {
	client *Client
}

// List walks the organization's events, newest first, a page at a time (GET /v1/events).
func (s *EventsService) List(ctx context.Context, params EventListParams) *Iter[Event] {
	filters := url.Values{"type": {params.Type}}
	if !params.CreatedAfter.IsZero() {
		filters.Set("created_after", params.CreatedAfter.UTC().Format(time.RFC3339Nano))
	}
	if !params.CreatedBefore.IsZero() {
		filters.Set("created_before", params.CreatedBefore.UTC().Format(time.RFC3339Nano))
	}
	if params.DeliverySuccess != nil {
		filters.Set("delivery_success", strconv.FormatBool(*params.DeliverySuccess))
	}
	return listPages[Event](ctx, s.client, "/events", filters, params.Limit)
}

// Get returns one event (GET /v1/events/{id}).
func (s *EventsService) Get(ctx context.Context, id string) (*Event, error) {
	var event Event
	if err := s.client.do(ctx, "GET", "/events/"+url.PathEscape(id), nil, nil, &event, 0); err != nil {
		return nil, err
	}
	return &event, nil
}
