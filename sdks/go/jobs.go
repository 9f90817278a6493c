package coexai

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// JobStatus is a job's state, as the API sends it.
type JobStatus string

// The statuses a job goes through; the last four are final.
const (
	JobStatusPending    JobStatus = "pending"
	JobStatusQueued     JobStatus = "queued"
	JobStatusProcessing JobStatus = "processing"
	JobStatusCompleted  JobStatus = "completed"
	JobStatusFailed     JobStatus = "failed"
	JobStatusDeadLetter JobStatus = "dead_letter"
	JobStatusCancelled  JobStatus = "cancelled"
)

// JobStatuses are every status, in the OpenAPI document's order (its JobStatus enum).
var JobStatuses = []JobStatus{
	JobStatusPending, JobStatusQueued, JobStatusProcessing,
	JobStatusCompleted, JobStatusFailed, JobStatusDeadLetter, JobStatusCancelled,
}

// Final reports whether the job will not change any more.
func (s JobStatus) Final() bool {
	switch s {
	case JobStatusCompleted, JobStatusFailed, JobStatusDeadLetter, JobStatusCancelled:
		return true
	}
	return false
}

// JobCreateRequest is the body of POST /v1/jobs (the OpenAPI schema JobCreate).
type JobCreateRequest struct {
	// AgentID names the agent that runs the job, for instance "maya".
	AgentID string `json:"agent_id"`
	// InputData is the agent's input, sent as it is.
	InputData map[string]interface{} `json:"input_data"`
	// Config is the agent's options, sent as it is.
	Config map[string]interface{} `json:"config,omitempty"`
	// FileIDs are files uploaded before, which the agent reads.
	FileIDs []string `json:"file_ids,omitempty"`
	// Priority orders the queue (nil: the service's default).
	Priority *int `json:"priority,omitempty"`
	// Webhook is a URL the service POSTs this job's events to ("": none).
	Webhook string `json:"webhook,omitempty"`
	// WebhookEventsFilter names which of the job's events go to Webhook: any of "start", "progress",
	// "completed" (nil: the service's default).
	WebhookEventsFilter []string `json:"webhook_events_filter,omitempty"`
}

// JobError is why a job failed (the OpenAPI schema JobError).
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Attempt *int   `json:"attempt"`
}

// Job is a job as the API returns it (the OpenAPI schema JobRead).
type Job struct {
	ID           string                 `json:"id"`
	AgentID      string                 `json:"agent_id"`
	Status       JobStatus              `json:"status"`
	Priority     int                    `json:"priority"`
	InputData    map[string]interface{} `json:"input_data"`
	Config       map[string]interface{} `json:"config"`
	FileIDs      []string               `json:"file_ids"`
	OutputData   map[string]interface{} `json:"output_data"`
	Error        *JobError              `json:"error"`
	Attempts     int                    `json:"attempts"`
	Livemode     bool                   `json:"livemode"`
	CreatedAt    time.Time              `json:"created_at"`
	QueuedAt     *time.Time             `json:"queued_at"`
	StartedAt    *time.Time             `json:"started_at"`
	FinishedAt   *time.Time             `json:"finished_at"`
	StatusReason *string                `json:"status_reason"`
	// Webhook is the URL this job's events are POSTed to (nil: none).
	Webhook *string `json:"webhook"`
	// WebhookEventsFilter names which of the job's events go to Webhook ("start", "progress", "completed").
	WebhookEventsFilter []string `json:"webhook_events_filter"`
}

// longPollSeconds is the longest ?wait= the service accepts.
const longPollSeconds = 60

// JobsService is the /v1/jobs part of the API (Client.Jobs).
type JobsService struct {
	client *Client
}

// Create queues a job (POST /v1/jobs). Retries carry the same Idempotency-Key, so they never create a
// second job; WithIdempotencyKey names the key yourself. To give the job files, upload them first
// (Files.Upload or Files.UploadLarge) and pass their IDs in FileIDs.
func (s *JobsService) Create(ctx context.Context, request JobCreateRequest, options ...RequestOption) (*Job, error) {
	if request.InputData == nil {
		request.InputData = map[string]interface{}{}
	}
	var job Job
	if err := s.client.doCall(ctx, apply(call{method: "POST", path: "/jobs", json: request}, options), &job); err != nil {
		return nil, err
	}
	return &job, nil
}

// jobBatchCreate is the body of POST /v1/jobs/batch (the OpenAPI schema JobBatchCreate).
type jobBatchCreate struct {
	Jobs []JobCreateRequest `json:"jobs"`
}

// jobBatchRead is its answer (the OpenAPI schema JobBatchRead).
type jobBatchRead struct {
	Data []*Job `json:"data"`
}

// CreateBatch queues several jobs in one request (POST /v1/jobs/batch): the service creates all of them
// or, when any is invalid, none (a 422 whose Details name the item, as "jobs.1"). The jobs come back in
// the order of the requests.
func (s *JobsService) CreateBatch(ctx context.Context, requests []JobCreateRequest, options ...RequestOption) ([]*Job, error) {
	batch := jobBatchCreate{Jobs: make([]JobCreateRequest, len(requests))}
	for i, request := range requests {
		if request.InputData == nil {
			request.InputData = map[string]interface{}{}
		}
		batch.Jobs[i] = request
	}
	var created jobBatchRead
	if err := s.client.doCall(ctx, apply(call{method: "POST", path: "/jobs/batch", json: batch}, options), &created); err != nil {
		return nil, err
	}
	return created.Data, nil
}

// JobListParams filters Jobs.List; zero values do not filter.
type JobListParams struct {
	Status        JobStatus
	AgentID       string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// Limit is the page size (the service's default when 0; at most 100).
	Limit int
}

// List walks the organization's jobs, newest first, a page at a time (GET /v1/jobs).
func (s *JobsService) List(ctx context.Context, params JobListParams) *Iter[Job] {
	filters := url.Values{"status": {string(params.Status)}, "agent_id": {params.AgentID}}
	if !params.CreatedAfter.IsZero() {
		filters.Set("created_after", params.CreatedAfter.UTC().Format(time.RFC3339Nano))
	}
	if !params.CreatedBefore.IsZero() {
		filters.Set("created_before", params.CreatedBefore.UTC().Format(time.RFC3339Nano))
	}
	return listPages[Job](ctx, s.client, "/jobs", filters, params.Limit)
}

// Cancel stops a job that is not final yet (POST /v1/jobs/{id}/cancel); a final job is a 409 *Error.
func (s *JobsService) Cancel(ctx context.Context, id string) (*Job, error) {
	var job Job
	if err := s.client.do(ctx, "POST", "/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, &job, 0); err != nil {
		return nil, err
	}
	return &job, nil
}

// Retry queues a failed, dead-lettered or cancelled job again (POST /v1/jobs/{id}/retry).
func (s *JobsService) Retry(ctx context.Context, id string) (*Job, error) {
	var job Job
	if err := s.client.do(ctx, "POST", "/jobs/"+url.PathEscape(id)+"/retry", nil, nil, &job, 0); err != nil {
		return nil, err
	}
	return &job, nil
}

// JobOutput is a completed job's output (GET /v1/jobs/{id}/output; the OpenAPI schema JobOutput). In
// JSON, Content is the agent's output as decoded JSON; in another format it is the rendering: a string
// for a text format (markdown, text, csv, html), else []byte (pdf). Body is the answer's bytes either way.
type JobOutput struct {
	JobID      string      `json:"job_id"`
	AgentID    string      `json:"agent_id"`
	Status     JobStatus   `json:"status"`
	Content    interface{} `json:"content"`
	FinishedAt *time.Time  `json:"finished_at"`
	// Format is the format asked for ("json" by default).
	Format string `json:"-"`
	// ContentType is the answer's media type, for instance "text/markdown; charset=utf-8".
	ContentType string `json:"-"`
	// Body is the answer's bytes.
	Body []byte `json:"-"`
}

// GetOutput returns a completed job's output in format: "" or "json", or one of the formats its agent
// offers (AgentConfig.OutputFormats: maya "markdown" and "text", sam "html" and "pdf", ...). A job not
// completed yet is a 409 *Error (Code "JOB_NOT_COMPLETED"); a format the agent does not offer a 422.
func (s *JobsService) GetOutput(ctx context.Context, id string, format string) (*JobOutput, error) {
	request := call{method: "GET", path: "/jobs/" + url.PathEscape(id) + "/output"}
	if format != "" && format != "json" {
		request.query = url.Values{"format": {format}}
		request.accept = "*/*"
	}
	got, err := s.client.send(ctx, request)
	if err != nil {
		return nil, err
	}
	kind := got.header.Get("Content-Type")
	if request.query == nil {
		var output JobOutput
		if err := json.Unmarshal(got.body, &output); err != nil {
			return nil, fmt.Errorf("coexai: decoding the output of job %s: %w", id, err)
		}
		output.Format, output.ContentType, output.Body = "json", kind, got.body
		return &output, nil
	}
	job, err := s.Get(ctx, id) // a rendering carries no job fields: they come from the job
	if err != nil {
		return nil, err
	}
	output := &JobOutput{JobID: job.ID, AgentID: job.AgentID, Status: job.Status, FinishedAt: job.FinishedAt,
		Format: format, ContentType: kind, Body: got.body}
	if strings.HasPrefix(kind, "text/") {
		output.Content = string(got.body)
	} else {
		output.Content = got.body
	}
	return output, nil
}

// Get returns the job (GET /v1/jobs/{id}).
func (s *JobsService) Get(ctx context.Context, id string) (*Job, error) {
	return s.get(ctx, id, 0)
}

// get with wait > 0 long-polls: the service answers as soon as the job is final, or after wait.
func (s *JobsService) get(ctx context.Context, id string, wait time.Duration) (*Job, error) {
	var query url.Values
	seconds := int(wait / time.Second)
	if seconds > 0 {
		query = url.Values{"wait": {strconv.Itoa(seconds)}}
	}
	var job Job
	if err := s.client.do(ctx, "GET", "/jobs/"+url.PathEscape(id), query, nil, &job, time.Duration(seconds)*time.Second); err != nil {
		return nil, err
	}
	return &job, nil
}

// WaitForCompletion returns the job once it is final (completed, failed, dead_letter or cancelled; look
// at Status), long-polling GET /v1/jobs/{id}?wait= so that it returns as soon as the job finishes. It
// waits until ctx is done (give it a deadline to bound the wait) and then returns ctx's error.
func (s *JobsService) WaitForCompletion(ctx context.Context, id string) (*Job, error) {
	for {
		wait := longPollSeconds * time.Second
		if deadline, ok := ctx.Deadline(); ok {
			if remaining := time.Until(deadline); remaining < wait {
				wait = remaining
			}
		}
		asked := time.Now()
		job, err := s.get(ctx, id, wait)
		if err != nil {
			return nil, err
		}
		if job.Status.Final() {
			return job, nil
		}
		// Answered early and not final (a restart of the service, or a wait under a second): pause a
		// little rather than ask again at once.
		if wait < time.Second || time.Since(asked) < wait-time.Second {
			if err := sleep(ctx, time.Second); err != nil {
				return nil, err
			}
		}
	}
}
