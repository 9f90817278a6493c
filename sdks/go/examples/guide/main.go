// The platform guide's Go example ("SDK Examples", Go), run by guide_test.go against a real service.
// It differs from the guide in two places, both so that it reaches the test's service instead of
// https://api.coexai.com/v1 with a placeholder key:
//   - the key is read from COEXAI_API_KEY instead of the literal "your_api_key";
//   - coexai.WithBaseURL(os.Getenv("COEXAI_BASE_URL")) is passed to NewClient (and "os" imported for both).
//
// The rest is the guide's code as printed (gofmt's layout).
package main

import (
	"context"
	"log"
	"os"

	"github.com/coexai/coexai-go"
)

func main() {
	client := coexai.NewClient(os.Getenv("COEXAI_API_KEY"), coexai.WithBaseURL(os.Getenv("COEXAI_BASE_URL")))

	// Create job
	job, err := client.Jobs.Create(context.Background(), coexai.JobCreateRequest{
		AgentID: "maya",
		InputData: map[string]interface{}{
			"source_type":    "text",
			"content":        "Your content...",
			"target_formats": []string{"twitter"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Poll for completion
	result, err := client.Jobs.WaitForCompletion(context.Background(), job.ID)
	if err != nil {
		log.Fatal(err)
	}

	log.Printf("Output: %+v", result.OutputData)
}
