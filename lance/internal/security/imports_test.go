package security

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTestPKIOnlyInTests fails if a non-test file of any package in the
// module imports testpki, which would put test CAs and keys generation in
// production builds.
func TestTestPKIOnlyInTests(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	const testpki = "github.com/lance-go/lance/lance/internal/security/testpki"
	cmd := exec.Command(goTool, "list", "-e", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		t.Fatalf("go list listed %d packages", len(lines))
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] == testpki {
			continue
		}
		for _, imp := range fields[1:] {
			if imp == testpki {
				t.Errorf("package %s imports testpki from a non-test file", fields[0])
			}
		}
	}
}
