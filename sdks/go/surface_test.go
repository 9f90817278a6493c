package coexai_test

// The rest of the API's surface against the real service (see service_test.go): files, listings,
// cancel, retry, batches, output formats, webhooks with a real delivery, events and typed errors.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coexai/coexai-go"
)

func apiError(t *testing.T, err error, status int, code string) *coexai.Error {
	t.Helper()
	var e *coexai.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *coexai.Error %d %s, got %v (%T)", status, code, err, err)
	}
	if e.StatusCode != status || (code != "" && e.Code != code) || e.Message == "" || !strings.HasPrefix(e.RequestID, "req_") {
		t.Fatalf("want %d %s with a message and request id, got %+v", status, code, e)
	}
	return e
}

func ids(t *testing.T, jobs *coexai.Iter[coexai.Job]) []string {
	t.Helper()
	all, err := jobs.All()
	if err != nil {
		t.Fatalf("listing: %v", err)
	}
	var got []string
	for _, job := range all {
		got = append(got, job.ID)
	}
	return got
}

// A file uploaded in the three pre-signed steps and one in a multipart request; a job reads one; the
// listing walks one file per page; a deleted file is gone.
func TestFilesUploadedAndReadByAJob(t *testing.T) {
	client := freshClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	large := bytes.Repeat([]byte("x"), 5000)
	big, err := client.Files.UploadLarge(ctx, coexai.FileUpload{Filename: "big.txt", Content: bytes.NewReader(large)})
	if err != nil {
		t.Fatalf("UploadLarge: %v", err)
	}
	if !strings.HasPrefix(big.ID, "file_") || big.Status != coexai.FileStatusReady || big.SizeBytes != 5000 ||
		big.ContentType != "text/plain" || big.Filename != "big.txt" || big.SHA256 == nil {
		t.Fatalf("unexpected file %+v", big)
	}
	// Not an io.Seeker: buffered once, so that a retry could send it again.
	note, err := client.Files.Upload(ctx, coexai.FileUpload{
		Filename: "note.txt",
		Content:  io.MultiReader(strings.NewReader("hello "), strings.NewReader("from go")),
		Metadata: map[string]interface{}{"source": "go"},
	})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if note.SizeBytes != 13 || note.Metadata["source"] != "go" || note.Status != coexai.FileStatusReady {
		t.Fatalf("unexpected file %+v", note)
	}
	got, err := client.Files.Get(ctx, big.ID)
	if err != nil || *got.SHA256 != *big.SHA256 {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	content, err := client.Files.Download(ctx, big.ID)
	if err != nil || !bytes.Equal(content, large) {
		t.Fatalf("Download: %d bytes, %v", len(content), err)
	}
	files, err := client.Files.List(ctx, coexai.FileListParams{Limit: 1}).All()
	if err != nil || len(files) != 2 || files[0].ID != note.ID || files[1].ID != big.ID {
		t.Fatalf("List one per page: %+v, %v", files, err)
	}

	job, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-noop", FileIDs: []string{note.ID}})
	if err != nil {
		t.Fatalf("Create with a file: %v", err)
	}
	done, err := client.Jobs.WaitForCompletion(ctx, job.ID)
	if err != nil || done.Status != coexai.JobStatusCompleted || !reflect.DeepEqual(done.FileIDs, []string{note.ID}) {
		t.Fatalf("job with a file: %+v, %v", done, err)
	}

	if err := client.Files.Delete(ctx, big.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = client.Files.Get(ctx, big.ID)
	apiError(t, err, http.StatusNotFound, "NOT_FOUND")
	_, err = client.Files.Download(ctx, big.ID)
	apiError(t, err, http.StatusNotFound, "NOT_FOUND")
	// Bytes the service does not take: refused at the confirmation, with its code.
	_, err = client.Files.UploadLarge(ctx, coexai.FileUpload{Filename: "tool.exe", ContentType: "application/x-msdownload",
		Content: bytes.NewReader([]byte("MZ\x90\x00 not a document"))})
	if e := (*coexai.Error)(nil); !errors.As(err, &e) || e.StatusCode/100 != 4 {
		t.Fatalf("an unsupported upload: %v", err)
	}
}

// Cancel, retry, a batch (all or none) and listings a page at a time, with filters.
func TestJobsListCancelRetryAndBatch(t *testing.T) {
	client := freshClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// The free plan runs one job at a time: a long one holds the slot, the next waits queued.
	sleeper, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-sleep", InputData: map[string]interface{}{"seconds": 30}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	queued, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-noop"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, err = client.Jobs.GetOutput(ctx, queued.ID, "")
	e := apiError(t, err, http.StatusConflict, "JOB_NOT_COMPLETED")
	if e.Details["status"] == nil {
		t.Fatalf("409 without the job's status: %+v", e)
	}
	for _, id := range []string{queued.ID, sleeper.ID} {
		cancelled, err := client.Jobs.Cancel(ctx, id)
		if err != nil || cancelled.Status != coexai.JobStatusCancelled {
			t.Fatalf("Cancel %s: %+v, %v", id, cancelled, err)
		}
	}
	_, err = client.Jobs.Cancel(ctx, queued.ID)
	apiError(t, err, http.StatusConflict, "")

	failing, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-fail"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	failed, err := client.Jobs.WaitForCompletion(ctx, failing.ID)
	if err != nil || failed.Status != coexai.JobStatusDeadLetter || failed.Error == nil || failed.Error.Code == "" {
		t.Fatalf("test-fail: %+v, %v", failed, err)
	}
	retried, err := client.Jobs.Retry(ctx, failing.ID)
	if err != nil || (retried.Status != coexai.JobStatusQueued && retried.Status != coexai.JobStatusProcessing) {
		t.Fatalf("Retry: %+v, %v", retried, err)
	}

	// A batch with an invalid item creates nothing; the 422 names the item.
	_, err = client.Jobs.CreateBatch(ctx, []coexai.JobCreateRequest{{AgentID: "test-noop"}, {AgentID: "no-such-agent"}})
	e = apiError(t, err, http.StatusUnprocessableEntity, "VALIDATION_ERROR")
	if !strings.Contains(fmt.Sprint(e.Details), "jobs.1") {
		t.Fatalf("the batch's 422 does not name jobs.1: %+v", e)
	}
	batch, err := client.Jobs.CreateBatch(ctx, []coexai.JobCreateRequest{
		{AgentID: "test-noop", InputData: map[string]interface{}{"n": 1}},
		{AgentID: "test-noop", InputData: map[string]interface{}{"n": 2}},
	})
	if err != nil || len(batch) != 2 || batch[0].InputData["n"] != float64(1) || batch[1].InputData["n"] != float64(2) {
		t.Fatalf("CreateBatch: %+v, %v", batch, err)
	}

	// One job a page: every job, newest first.
	all := ids(t, client.Jobs.List(ctx, coexai.JobListParams{Limit: 1}))
	created := map[string]bool{sleeper.ID: true, queued.ID: true, failing.ID: true, batch[0].ID: true, batch[1].ID: true}
	if len(all) != 5 || all[3] != queued.ID || all[4] != sleeper.ID || all[2] != failing.ID {
		t.Fatalf("List: %v", all)
	}
	for _, id := range all {
		if !created[id] {
			t.Fatalf("List shows %s, not one of this organization's jobs", id)
		}
	}
	if got := ids(t, client.Jobs.List(ctx, coexai.JobListParams{Status: coexai.JobStatusCancelled, Limit: 1})); !reflect.DeepEqual(got, []string{queued.ID, sleeper.ID}) {
		t.Fatalf("List cancelled: %v", got)
	}
	if got := ids(t, client.Jobs.List(ctx, coexai.JobListParams{AgentID: "test-fail"})); !reflect.DeepEqual(got, []string{failing.ID}) {
		t.Fatalf("List test-fail: %v", got)
	}
	if got := ids(t, client.Jobs.List(ctx, coexai.JobListParams{CreatedAfter: time.Now().Add(time.Hour)})); len(got) != 0 {
		t.Fatalf("List created in an hour: %v", got)
	}
	if got := ids(t, client.Jobs.List(ctx, coexai.JobListParams{CreatedAfter: time.Now().Add(-time.Hour)})); len(got) != 5 {
		t.Fatalf("List created in the last hour: %v", got)
	}
	bad := client.Jobs.List(ctx, coexai.JobListParams{Limit: 100000})
	if bad.Next() {
		t.Fatal("a page of 100000 was served")
	}
	apiError(t, bad.Err(), http.StatusUnprocessableEntity, "VALIDATION_ERROR")

	// The same Idempotency-Key gives the same job.
	key := coexai.WithIdempotencyKey("go-order-" + strconv.FormatInt(time.Now().UnixNano(), 10))
	first, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-noop"}, key)
	if err != nil {
		t.Fatal(err)
	}
	again, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-noop"}, key)
	if err != nil || again.ID != first.ID {
		t.Fatalf("the same Idempotency-Key made %+v, then %+v (%v)", first, again, err)
	}
}

// A maya job's output as JSON and in the agent's own formats; a format it does not offer is a 422.
func TestOutputFormats(t *testing.T) {
	client := freshClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	job, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "maya", InputData: map[string]interface{}{
		"source_type": "text", "content": "Go SDK release notes: files, webhooks and events.", "target_formats": []string{"twitter"},
	}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	done, err := client.Jobs.WaitForCompletion(ctx, job.ID)
	if err != nil || done.Status != coexai.JobStatusCompleted {
		t.Fatalf("maya: %+v, %v", done, err)
	}
	output, err := client.Jobs.GetOutput(ctx, job.ID, "")
	if err != nil {
		t.Fatalf("GetOutput: %v", err)
	}
	content, ok := output.Content.(map[string]interface{})
	if !ok || output.JobID != job.ID || output.AgentID != "maya" || output.Status != coexai.JobStatusCompleted ||
		output.Format != "json" || output.FinishedAt == nil || !reflect.DeepEqual(content, done.OutputData) {
		t.Fatalf("JSON output %+v", output)
	}
	config, err := client.Agents.Config(ctx, "maya")
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	for _, format := range config.OutputFormats[1:] { // markdown, text
		rendered, err := client.Jobs.GetOutput(ctx, job.ID, format)
		if err != nil {
			t.Fatalf("GetOutput %s: %v", format, err)
		}
		text, ok := rendered.Content.(string)
		if !ok || text == "" || rendered.Format != format || !strings.HasPrefix(rendered.ContentType, "text/") ||
			rendered.JobID != job.ID || string(rendered.Body) != text {
			t.Fatalf("%s output %+v", format, rendered)
		}
	}
	_, err = client.Jobs.GetOutput(ctx, job.ID, "pdf")
	e := apiError(t, err, http.StatusUnprocessableEntity, "VALIDATION_ERROR")
	if !strings.Contains(fmt.Sprint(e.Details), "markdown") {
		t.Fatalf("the 422 does not name maya's formats: %+v", e)
	}
}

func TestAgents(t *testing.T) {
	client := freshClient(t)
	ctx := context.Background()
	agents, err := client.Agents.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	names := map[string]bool{}
	for _, agent := range agents {
		names[agent.ID] = true
	}
	for _, id := range []string{"maya", "jordan", "sam", "taylor"} {
		if !names[id] {
			t.Fatalf("agent %s is not listed: %+v", id, agents)
		}
	}
	taylor, err := client.Agents.Get(ctx, "taylor")
	if err != nil || taylor.ID != "taylor" || len(taylor.AcceptedFileTypes) == 0 || taylor.OutputFormats[0] != "json" {
		t.Fatalf("Get: %+v, %v", taylor, err)
	}
	config, err := client.Agents.Config(ctx, "taylor")
	if err != nil || len(config.InputSchema) == 0 || config.MaxFiles == 0 || config.Name != taylor.Name {
		t.Fatalf("Config: %+v, %v", config, err)
	}
	_, err = client.Agents.Config(ctx, "no-such-agent")
	apiError(t, err, http.StatusNotFound, "")
}

// receiver is a customer's webhook endpoint on loopback: it keeps each request's raw body and headers.
type receiver struct {
	mu       sync.Mutex
	requests []received
	arrived  chan struct{}
}

type received struct {
	body    []byte
	headers http.Header
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, request *http.Request) {
	body, _ := io.ReadAll(request.Body)
	r.mu.Lock()
	r.requests = append(r.requests, received{body, request.Header.Clone()})
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	_, _ = w.Write([]byte("OK"))
}

// next waits for a request whose body contains marker.
func (r *receiver) next(t *testing.T, marker string) received {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		for _, request := range r.requests {
			if bytes.Contains(request.body, []byte(marker)) {
				r.mu.Unlock()
				return request
			}
		}
		r.mu.Unlock()
		select {
		case <-r.arrived:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no delivery with %q arrived", marker)
		}
	}
}

// An endpoint's CRUD, and a real job.completed delivery verified in both schemes; forged, replayed and
// unsigned requests refused; after a rotation both secrets verify; the event is listed.
func TestWebhooksAndAVerifiedDelivery(t *testing.T) {
	client := freshClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	endpoint := &receiver{arrived: make(chan struct{}, 1)}
	server := httptest.NewServer(endpoint)
	defer server.Close()

	description := "go sdk"
	hook, err := client.Webhooks.Create(ctx, coexai.WebhookCreateRequest{URL: server.URL + "/hook", Events: []string{"job.completed"}, Description: &description})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !strings.HasPrefix(hook.ID, "wh_") || !strings.HasPrefix(hook.Secret, "whsec_") || !hook.Enabled || *hook.Description != "go sdk" {
		t.Fatalf("unexpected endpoint %+v", hook)
	}
	got, err := client.Webhooks.Get(ctx, hook.ID)
	if err != nil || got.URL != hook.URL {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	listed, err := client.Webhooks.List(ctx, coexai.WebhookListParams{}).All()
	if err != nil || len(listed) != 1 || listed[0].ID != hook.ID {
		t.Fatalf("List: %+v, %v", listed, err)
	}
	renamed := "renamed"
	updated, err := client.Webhooks.Update(ctx, hook.ID, coexai.WebhookUpdateRequest{Description: &renamed})
	if err != nil || *updated.Description != "renamed" || !reflect.DeepEqual(updated.Events, []string{"job.completed"}) {
		t.Fatalf("Update: %+v, %v", updated, err)
	}
	_, err = client.Webhooks.Update(ctx, hook.ID, coexai.WebhookUpdateRequest{Events: []string{"no.such.event"}})
	apiError(t, err, http.StatusUnprocessableEntity, "VALIDATION_ERROR")

	job, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-noop", InputData: map[string]interface{}{"echo": "webhook"}})
	if err != nil {
		t.Fatalf("Create job: %v", err)
	}
	delivery := endpoint.next(t, job.ID)
	body, headers, secret := delivery.body, delivery.headers, hook.Secret

	event, err := client.Webhooks.ConstructEvent(body, headers, secret)
	if err != nil {
		t.Fatalf("ConstructEvent: %v", err)
	}
	if event.Type != "job.completed" || event.Data["id"] != job.ID || !strings.HasPrefix(event.ID, "evt_") ||
		event.WebhookID != hook.ID || event.Timestamp.IsZero() {
		t.Fatalf("unexpected event %+v", event)
	}
	// Only the guide's header (a proxy dropped the others): checked by X-CoExAI-Signature. Header names
	// in any case.
	guideOnly := http.Header{"x-coexai-signature": {headers.Get("X-CoExAI-Signature")}}
	if err := coexai.VerifyWebhook(body, guideOnly, secret); err != nil {
		t.Fatalf("X-CoExAI-Signature alone: %v", err)
	}
	forged := bytes.Replace(body, []byte("webhook"), []byte("forged!"), 1)
	refusals := []struct {
		name    string
		body    []byte
		headers http.Header
		secret  string
		code    string
	}{
		{"forged body", forged, headers, secret, "INVALID_SIGNATURE"},
		{"forged body, guide's header", forged, guideOnly, secret, "INVALID_SIGNATURE"},
		{"another secret", body, headers, "whsec_" + strings.Repeat("A", 32), "INVALID_SIGNATURE"},
		{"another secret, guide's header", body, guideOnly, "whsec_" + strings.Repeat("A", 32), "INVALID_SIGNATURE"},
		{"replayed an hour later", body, with(headers, "webhook-timestamp", strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)), secret, "TIMESTAMP_OUT_OF_RANGE"},
		{"unsigned", body, http.Header{}, secret, "MISSING_SIGNATURE"},
		{"not a whsec_ secret", body, headers, "whsec_***", "INVALID_SECRET"},
	}
	for _, refusal := range refusals {
		err := client.Webhooks.Verify(refusal.body, refusal.headers, refusal.secret)
		var refused *coexai.WebhookVerificationError
		if !errors.As(err, &refused) || refused.Code != refusal.code {
			t.Errorf("%s: %v, want %s", refusal.name, err, refusal.code)
		}
	}
	if _, err := client.Webhooks.ConstructEvent(forged, headers, secret); err == nil {
		t.Fatal("ConstructEvent took a forged body")
	}
	// An hour's tolerance takes the hour-old timestamp.
	if err := client.Webhooks.Verify(body, with(headers, "webhook-timestamp", headers.Get("webhook-timestamp")), secret, coexai.WithTolerance(time.Hour)); err != nil {
		t.Fatalf("WithTolerance: %v", err)
	}

	// After a rotation the old secret still signs for a while: both verify the next delivery, in both schemes.
	rotated, err := client.Webhooks.RotateSecret(ctx, hook.ID)
	if err != nil || !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.Secret == secret || rotated.PreviousSecretExpiresAt.Before(time.Now()) {
		t.Fatalf("RotateSecret: %+v, %v", rotated, err)
	}
	second, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-noop"})
	if err != nil {
		t.Fatal(err)
	}
	after := endpoint.next(t, second.ID)
	for _, key := range []string{rotated.Secret, secret} {
		if err := coexai.VerifyWebhook(after.body, after.headers, key); err != nil {
			t.Errorf("after the rotation, Standard Webhooks with %s...: %v", key[:10], err)
		}
		previousOnly := http.Header{}
		previousOnly.Set("X-CoExAI-Signature", after.headers.Get("X-CoExAI-Signature"))
		previousOnly.Set("X-CoExAI-Signature-Previous", after.headers.Get("X-CoExAI-Signature-Previous"))
		if err := coexai.VerifyWebhook(after.body, previousOnly, key); err != nil {
			t.Errorf("after the rotation, X-CoExAI-Signature with %s...: %v", key[:10], err)
		}
	}

	// The delivered event is the stored one.
	events, err := client.Events.List(ctx, coexai.EventListParams{Type: "job.completed", Limit: 1}).All()
	if err != nil || len(events) != 2 || events[1].ID != event.ID {
		t.Fatalf("Events.List: %+v, %v", events, err)
	}
	stored, err := client.Events.Get(ctx, event.ID)
	if err != nil || stored.Type != "job.completed" || stored.Data["id"] != job.ID {
		t.Fatalf("Events.Get: %+v, %v", stored, err)
	}
	_, err = client.Events.Get(ctx, "evt_doesnotexist")
	apiError(t, err, http.StatusNotFound, "NOT_FOUND")

	if err := client.Webhooks.Delete(ctx, hook.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = client.Webhooks.Get(ctx, hook.ID)
	apiError(t, err, http.StatusNotFound, "NOT_FOUND")
}

func with(headers http.Header, name, value string) http.Header {
	changed := headers.Clone()
	changed.Set(name, value)
	return changed
}

// 404, 422 with details, 401, and another organization's ids: not found, never forbidden.
func TestTypedErrorsAndForeignIDs(t *testing.T) {
	client := freshClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "maya", InputData: map[string]interface{}{"source_type": "nonsense"}})
	e := apiError(t, err, http.StatusUnprocessableEntity, "VALIDATION_ERROR")
	if len(e.Details) == 0 {
		t.Fatalf("a 422 without details: %+v", e)
	}
	forged := coexai.NewClient("coexai_live_"+strings.Repeat("x", 40), coexai.WithBaseURL(os.Getenv("COEXAI_BASE_URL")))
	_, err = forged.Agents.List(ctx)
	apiError(t, err, http.StatusUnauthorized, "")

	stranger := freshClient(t)
	theirs, err := stranger.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-noop"})
	if err != nil {
		t.Fatal(err)
	}
	file, err := stranger.Files.Upload(ctx, coexai.FileUpload{Filename: "theirs.txt", Content: strings.NewReader("theirs")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Jobs.Get(ctx, theirs.ID)
	apiError(t, err, http.StatusNotFound, "NOT_FOUND")
	_, err = client.Jobs.Cancel(ctx, theirs.ID)
	apiError(t, err, http.StatusNotFound, "NOT_FOUND")
	_, err = client.Files.Download(ctx, file.ID)
	apiError(t, err, http.StatusNotFound, "NOT_FOUND")
	err = client.Files.Delete(ctx, file.ID)
	apiError(t, err, http.StatusNotFound, "NOT_FOUND")
	// Their file in our job: refused, and nothing of ours lists it.
	_, err = client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-noop", FileIDs: []string{file.ID}})
	if e := (*coexai.Error)(nil); !errors.As(err, &e) || e.StatusCode/100 != 4 {
		t.Fatalf("another organization's file in a job: %v", err)
	}
	if still, err := stranger.Files.Get(ctx, file.ID); err != nil || still.ID != file.ID {
		t.Fatalf("their file after our attempts: %+v, %v", still, err)
	}
}

// freshClient signs up a user and organization of the test's own on the service and returns a client with
// an API key of theirs (read, write, admin), so that what the test lists is only what it made.
func freshClient(t *testing.T) *coexai.Client {
	t.Helper()
	service(t)
	base := os.Getenv("COEXAI_BASE_URL")
	origin := strings.TrimSuffix(strings.TrimRight(base, "/"), "/v1")
	post := func(path, bearer string, in interface{}, want int) map[string]interface{} {
		t.Helper()
		body, _ := json.Marshal(in)
		request, _ := http.NewRequest("POST", origin+path, bytes.NewReader(body))
		request.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			request.Header.Set("Authorization", "Bearer "+bearer)
		}
		response, err := http.DefaultClient.Do(request)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer response.Body.Close()
		var out map[string]interface{}
		_ = json.NewDecoder(response.Body).Decode(&out)
		if response.StatusCode != want {
			t.Fatalf("POST %s: %d %v", path, response.StatusCode, out)
		}
		return out
	}
	email := fmt.Sprintf("go-%d@example.com", time.Now().UnixNano())
	post("/api/v1/auth/register/", "", map[string]string{"email": email, "password": "SecurePass123!", "full_name": "Go Pher", "company_name": "SDK Co"}, http.StatusCreated)
	login := post("/v1/auth/login", "", map[string]string{"email": email, "password": "SecurePass123!"}, http.StatusOK)
	access, _ := login["tokens"].(map[string]interface{})["access_token"].(string)
	key := post("/v1/api-keys", access, map[string]interface{}{"name": "go sdk", "scopes": []string{"read", "write", "admin"}}, http.StatusCreated)
	return coexai.NewClient(key["key"].(string), coexai.WithBaseURL(base))
}
