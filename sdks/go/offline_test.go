package coexai_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coexai/coexai-go"
)

const fileJSON = `{"id":"file_1","filename":"big.bin","content_type":"application/pdf","size_bytes":6,"sha256":"ab",` +
	`"status":"ready","metadata":{},"livemode":true,"created_at":"2026-01-01T00:00:00Z"}`

// List follows next_cursor until has_more is false, sending the filters and the page size each time.
func TestListWalksEveryPage(t *testing.T) {
	var queries []string
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		page := map[string]interface{}{"has_more": false, "next_cursor": nil}
		switch r.URL.Query().Get("cursor") {
		case "":
			page = map[string]interface{}{"has_more": true, "next_cursor": "c1"}
			page["data"] = []map[string]interface{}{{"id": "evt_3", "type": "job.completed"}, {"id": "evt_2", "type": "job.completed"}}
		case "c1":
			page["data"] = []map[string]interface{}{{"id": "evt_1", "type": "job.completed"}}
		default:
			http.Error(w, "unexpected cursor", http.StatusTeapot)
			return
		}
		_ = json.NewEncoder(w).Encode(page)
	}))
	defer server.Close()

	client := coexai.NewClient("key_1", coexai.WithBaseURL(server.URL))
	events, err := client.Events.List(context.Background(), coexai.EventListParams{Type: "job.completed", Limit: 2}).All()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, event := range events {
		got = append(got, event.ID)
	}
	if strings.Join(got, ",") != "evt_3,evt_2,evt_1" {
		t.Fatalf("walked %v", got)
	}
	if len(queries) != 2 || queries[0] != "limit=2&type=job.completed" || queries[1] != "cursor=c1&limit=2&type=job.completed" {
		t.Fatalf("queries %q", queries)
	}
}

// UploadLarge's PUT goes to the pre-signed URL without the API key, and a retried PUT sends the whole
// body again; the confirmation follows.
func TestUploadLargePutsWithoutTheKeyAndRetriesTheWholeBody(t *testing.T) {
	var mu sync.Mutex
	var steps []string
	var server *httptest.Server
	server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		steps = append(steps, fmt.Sprintf("%s %s auth=%q type=%q length=%d%s body=%q", r.Method, r.URL.RequestURI(),
			r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.ContentLength, strings.Join(r.TransferEncoding, ","), body))
		attempt := len(steps)
		mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/v1/files/upload-url":
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"upload_url":"%s/v1/files/file_1/upload?expires=9&signature=s","file_id":"file_1","expires_at":"2026-01-01T00:00:00Z"}`, server.URL)
		case r.Method == "PUT" && attempt == 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.Method == "PUT":
			_, _ = w.Write([]byte(fileJSON))
		case r.Method == "POST" && r.URL.Path == "/v1/files/file_1/confirm":
			_, _ = w.Write([]byte(fileJSON))
		default:
			http.Error(w, "unexpected", http.StatusTeapot)
		}
	}))
	defer server.Close()

	client := coexai.NewClient("key_1", coexai.WithBaseURL(server.URL+"/v1"))
	file, err := client.Files.UploadLarge(context.Background(), coexai.FileUpload{Filename: "big.pdf", Content: strings.NewReader("%PDF-1")})
	if err != nil {
		t.Fatal(err)
	}
	if file.ID != "file_1" || file.Status != coexai.FileStatusReady {
		t.Fatalf("file %+v", file)
	}
	want := []string{
		`POST /v1/files/upload-url auth="Bearer key_1" type="application/json" length=70 body="{\"filename\":\"big.pdf\",\"content_type\":\"application/pdf\",\"size_bytes\":6}"`,
		// A declared length, not chunked: a bucket's pre-signed URL refuses a PUT without Content-Length.
		`PUT /v1/files/file_1/upload?expires=9&signature=s auth="" type="application/pdf" length=6 body="%PDF-1"`,
		`PUT /v1/files/file_1/upload?expires=9&signature=s auth="" type="application/pdf" length=6 body="%PDF-1"`,
		`POST /v1/files/file_1/confirm auth="Bearer key_1" type="" length=0 body=""`,
	}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Fatalf("steps:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
}
