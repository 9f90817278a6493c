// Files and webhooks with the Go SDK: a receiver that verifies the service's deliveries, a webhook
// endpoint pointing at it, a file uploaded in the three pre-signed steps, and a job that reads the file;
// the receiver prints the job.completed event once its signature checks out.
//
// COEXAI_API_KEY (with the admin scope, for the endpoint) and COEXAI_BASE_URL (".../v1") name the
// service. The receiver listens on 127.0.0.1 here, so that the example runs against a local service
// (one that allows private webhook targets); a real receiver is a public HTTPS URL and keeps the secret
// from Webhooks.Create in its configuration.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coexai/coexai-go"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := coexai.NewClient(os.Getenv("COEXAI_API_KEY"), coexai.WithBaseURL(os.Getenv("COEXAI_BASE_URL")))

	// The receiver: verify the raw body before trusting anything in it.
	var secret string
	events := make(chan *coexai.WebhookEvent, 10)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payload, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		event, err := client.Webhooks.ConstructEvent(payload, r.Header, secret)
		if err != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		events <- event
		w.WriteHeader(http.StatusNoContent)
	})
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	receiver := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = receiver.Serve(listener) }()
	defer receiver.Close()

	hook, err := client.Webhooks.Create(ctx, coexai.WebhookCreateRequest{
		URL:    "http://" + listener.Addr().String() + "/webhooks/coexai",
		Events: []string{"job.completed", "job.failed"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Webhooks.Delete(context.Background(), hook.ID)
	secret = hook.Secret // shown once: keep it

	// A large file goes up in three steps: an upload URL, a PUT of its bytes, a confirmation.
	file, err := client.Files.UploadLarge(ctx, coexai.FileUpload{
		Filename: "notes.txt",
		Content:  strings.NewReader("Meeting notes: ship the Go SDK's files and webhooks.\n"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("File: %s %s %d bytes\n", file.ID, file.Status, file.SizeBytes)

	// test-noop is the test service's agent (AGENT_TEST_MODE), which finishes at once; a real integration
	// names its agent here, "taylor" for documents for instance.
	job, err := client.Jobs.Create(ctx, coexai.JobCreateRequest{AgentID: "test-noop", FileIDs: []string{file.ID}})
	if err != nil {
		log.Fatal(err)
	}
	for {
		select {
		case event := <-events:
			if event.Data["id"] != job.ID {
				continue
			}
			fmt.Printf("Event: %s %s for job %s (verified)\n", event.ID, event.Type, job.ID)
			return
		case <-ctx.Done():
			log.Fatal("no webhook arrived: ", ctx.Err())
		}
	}
}
