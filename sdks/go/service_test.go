package coexai_test

// These tests run against a real service: COEXAI_BASE_URL (".../v1") and COEXAI_API_KEY (a key with the
// read and write scopes) name it. tests/e2e/test_sdk_go.py starts `backplane serve` and `backplane
// worker`, makes the key and runs `go test` with both set; without them these tests are skipped.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coexai/coexai-go"
)

func service(t *testing.T) *coexai.Client {
	t.Helper()
	base, key := os.Getenv("COEXAI_BASE_URL"), os.Getenv("COEXAI_API_KEY")
	if base == "" || key == "" {
		t.Skip("COEXAI_BASE_URL and COEXAI_API_KEY name no service")
	}
	return coexai.NewClient(key, coexai.WithBaseURL(base))
}

func TestJobRunsToCompletion(t *testing.T) {
	client := service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{
		AgentID:   "test-noop",
		InputData: map[string]interface{}{"echo": "from go"},
		Config:    map[string]interface{}{},
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if job.ID == "" || job.AgentID != "test-noop" || job.Status.Final() || job.CreatedAt.IsZero() {
		t.Fatalf("unexpected new job %+v", job)
	}
	done, err := client.Jobs.WaitForCompletion(ctx, job.ID)
	if err != nil {
		t.Fatalf("WaitForCompletion: %v", err)
	}
	if done.ID != job.ID || done.Status != coexai.JobStatusCompleted || done.OutputData["echo"] != "from go" || done.FinishedAt == nil {
		t.Fatalf("unexpected finished job %+v (error %+v)", done, done.Error)
	}
	again, err := client.Jobs.Get(ctx, job.ID)
	if err != nil || again.Status != coexai.JobStatusCompleted {
		t.Fatalf("Get: %+v, %v", again, err)
	}
}

func TestAFailedJobCarriesItsError(t *testing.T) {
	client := service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{
		AgentID:   "test-fail",
		InputData: map[string]interface{}{"permanent": true, "message": "no good"},
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	done, err := client.Jobs.WaitForCompletion(ctx, job.ID)
	if err != nil {
		t.Fatalf("WaitForCompletion: %v", err)
	}
	if done.Status != coexai.JobStatusFailed || done.Error == nil || done.Error.Code == "" ||
		!strings.Contains(done.Error.Message, "no good") || done.OutputData != nil {
		t.Fatalf("unexpected failed job %+v (error %+v)", done, done.Error)
	}
}

func TestWaitForCompletionEndsWithTheContext(t *testing.T) {
	client := service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// test-sleep holds the job for as long as asked; the wait gives up first.
	job, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-sleep", InputData: map[string]interface{}{"seconds": 3}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	short, stop := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer stop()
	started := time.Now()
	_, err = client.Jobs.WaitForCompletion(short, job.ID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForCompletion past its deadline returned %v", err)
	}
	if waited := time.Since(started); waited > 5*time.Second {
		t.Fatalf("WaitForCompletion returned %v after a 1.5 s deadline", waited)
	}
}

func TestServiceErrorsAreTyped(t *testing.T) {
	client := service(t)
	ctx := context.Background()

	_, err := client.Jobs.Get(ctx, "job_does_not_exist")
	var apiError *coexai.Error
	if !errors.As(err, &apiError) || apiError.StatusCode != http.StatusNotFound || apiError.Code == "" ||
		apiError.Message == "" || apiError.RequestID == "" {
		t.Fatalf("unknown job: %#v", err)
	}

	_, err = client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "no-such-agent"})
	if !errors.As(err, &apiError) || apiError.StatusCode/100 != 4 || apiError.Code == "" || apiError.RequestID == "" {
		t.Fatalf("unknown agent: %#v", err)
	}

	forged := coexai.NewClient("coexai_live_forged", coexai.WithBaseURL(os.Getenv("COEXAI_BASE_URL")))
	_, err = forged.Jobs.Get(ctx, "job_does_not_exist")
	if !errors.As(err, &apiError) || apiError.StatusCode != http.StatusUnauthorized || apiError.Code == "" {
		t.Fatalf("forged key: %#v", err)
	}
}

// One source of truth: the JSON names of the fields the SDK models (its structs' json tags) are the
// properties of the same schemas in the service's /openapi.json, so a service change to a modelled
// field fails here until the SDK follows.
func TestModelsFollowTheOpenAPIDocument(t *testing.T) {
	service(t)
	origin, err := url.Parse(os.Getenv("COEXAI_BASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	response, err := http.Get(origin.Scheme + "://" + origin.Host + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer response.Body.Close()
	var document struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Enum       []string                   `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.NewDecoder(response.Body).Decode(&document); err != nil {
		t.Fatalf("decoding /openapi.json: %v", err)
	}
	models := map[string]interface{}{
		"JobRead":           coexai.Job{},
		"JobCreate":         coexai.JobCreateRequest{},
		"JobError":          coexai.JobError{},
		"JobOutput":         coexai.JobOutput{},
		"Page_JobRead_":     coexai.Page[coexai.Job]{},
		"FileRead":          coexai.File{},
		"UploadUrlResponse": coexai.UploadURL{},
		"Page_FileRead_":    coexai.Page[coexai.File]{},
		"AgentSummary":      coexai.Agent{},
		"AgentConfig":       coexai.AgentConfig{},
		"WebhookCreate":     coexai.WebhookCreateRequest{},
		"WebhookCreated":    coexai.WebhookCreated{},
		"WebhookRead":       coexai.Webhook{},
		"WebhookUpdate":     coexai.WebhookUpdateRequest{},
		"SecretRotated":     coexai.SecretRotated{},
		"Page_WebhookRead_": coexai.Page[coexai.Webhook]{},
		"EventRead":         coexai.Event{},
		"Page_EventRead_":   coexai.Page[coexai.Event]{},
	}
	for schema, model := range coexai.UnexportedModels {
		models[schema] = model
	}
	for schema, model := range models {
		served, ok := document.Components.Schemas[schema]
		if !ok {
			t.Errorf("the OpenAPI document has no schema %s", schema)
			continue
		}
		var want []string
		for name := range served.Properties {
			want = append(want, name)
		}
		sort.Strings(want)
		if got := jsonNames(reflect.TypeOf(model)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s's JSON fields %v differ from the OpenAPI schema %s's %v: update the SDK (and CHANGELOG.md)",
				reflect.TypeOf(model), got, schema, want)
		}
	}
	var statuses []string
	for _, status := range coexai.JobStatuses {
		statuses = append(statuses, string(status))
	}
	if served := document.Components.Schemas["JobStatus"].Enum; !reflect.DeepEqual(statuses, served) {
		t.Errorf("coexai.JobStatuses %v differ from the OpenAPI JobStatus enum %v", statuses, served)
	}
}

// jsonNames are the JSON names of a struct's fields, with those of an embedded struct, as encoding/json
// flattens them.
func jsonNames(model reflect.Type) []string {
	var names []string
	for i := 0; i < model.NumField(); i++ {
		field := model.Field(i)
		name := strings.Split(field.Tag.Get("json"), ",")[0]
		if field.Anonymous && name == "" {
			names = append(names, jsonNames(field.Type)...)
		} else if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// The guide's Go snippet (examples/guide), run as a program.
func TestTheGuidesExampleRuns(t *testing.T) {
	service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	command := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "run", "./examples/guide")
	output, err := command.CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./examples/guide: %v\n%s", err, output)
	}
	if !strings.Contains(string(output), "Output: map[") || !strings.Contains(string(output), "twitter") {
		t.Fatalf("the example printed no maya output:\n%s", output)
	}
	t.Logf("%s", output)
}

// examples/files_webhooks, run as a program: a three-step upload, a job reading it, and its delivery
// verified by the example's own receiver.
func TestTheFilesAndWebhooksExampleRuns(t *testing.T) {
	service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	command := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "run", "./examples/files_webhooks")
	output, err := command.CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./examples/files_webhooks: %v\n%s", err, output)
	}
	if !strings.Contains(string(output), "File: file_") || !strings.Contains(string(output), " ready 53 bytes") ||
		!strings.Contains(string(output), "job.completed for job job_") {
		t.Fatalf("the example printed no upload or no verified event:\n%s", output)
	}
	t.Logf("%s", output)
}
