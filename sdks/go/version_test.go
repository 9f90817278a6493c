package coexai_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/coexai/coexai-go"
)

// The newest entry of CHANGELOG.md is this version: a release cannot change one without the other.
func TestVersionIsTheChangelogsNewest(t *testing.T) {
	changelog, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	newest := regexp.MustCompile(`(?m)^## (\S+)`).FindSubmatch(changelog)
	if newest == nil || string(newest[1]) != coexai.Version {
		t.Fatalf("coexai.Version is %q, CHANGELOG.md's newest entry %q", coexai.Version, newest)
	}
}
