package server

import (
	"os"
	"testing"
)

// fuzzDirs are the directories made by tempDir, removed by TestMain.
var fuzzDirs []string

// tempDir makes a directory for a server shared across fuzz inputs (t's
// own TempDir would be removed after the first input).
func tempDir() (string, error) {
	d, err := os.MkdirTemp("", "lance-server-fuzz-")
	if err == nil {
		fuzzDirs = append(fuzzDirs, d)
	}
	return d, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range fuzzDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}
