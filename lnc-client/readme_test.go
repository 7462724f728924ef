package lance

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeSnippets checks that every Go snippet of the README is part
// of an Example function of this package, so that what the README
// shows compiles and stays current.
func TestReadmeSnippets(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var examples []byte
	for _, f := range []string{"example_test.go", "group_example_test.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, b...)
	}
	norm := func(s string) string {
		var out []string
		for l := range strings.SplitSeq(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	body := norm(string(examples))
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("the README has no Go snippet")
	}
	for _, b := range blocks {
		if !strings.Contains(body, norm(b[1])) {
			t.Errorf("README snippet is not the body of an Example in example_test.go:\n%s", b[1])
		}
	}
}
