package node

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a node starts (accept loop, connections, topic writers,
// retention, HTTP, storage workers) must be gone after Shutdown.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
