package coexai

import (
	"context"
	"net/url"
	"strconv"
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
}

// longPollSeconds is the longest ?wait= the service accepts.
const longPollSeconds = 60

// JobsService is the /v1/jobs part of the API (Client.Jobs).
type JobsService struct {
	client *Client
}

// Create queues a job (POST /v1/jobs). Retries carry the same Idempotency-Key, so they never create a
// second job.
func (s *JobsService) Create(ctx context.Context, request JobCreateRequest) (*Job, error) {
	if request.InputData == nil {
		request.InputData = map[string]interface{}{}
	}
	var job Job
	if err := s.client.do(ctx, "POST", "/jobs", nil, request, &job, 0); err != nil {
		return nil, err
	}
	return &job, nil
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
