package control

import "testing"

func TestCodes(t *testing.T) {
	want := map[Code]struct {
		value  uint8
		name   string
		client bool
	}{
		CodeCreateTopic:              {0x01, "CreateTopic", true},
		CodeDeleteTopic:              {0x02, "DeleteTopic", true},
		CodeListTopics:               {0x03, "ListTopics", true},
		CodeGetTopic:                 {0x04, "GetTopic", true},
		CodeSetRetention:             {0x05, "SetRetention", true},
		CodeCreateTopicWithRetention: {0x06, "CreateTopicWithRetention", true},
		CodeGetClusterStatus:         {0x07, "GetClusterStatus", true},
		CodeAuthenticate:             {0x08, "Authenticate", true},
		CodeAuthenticateResponse:     {0x09, "AuthenticateResponse", false},
		CodeFetch:                    {0x10, "Fetch", true},
		CodeFetchResponse:            {0x11, "FetchResponse", false},
		CodeCatchingUp:               {0x12, "CatchingUp", false},
		CodeSubscribe:                {0x20, "Subscribe", true},
		CodeUnsubscribe:              {0x21, "Unsubscribe", true},
		CodeCommitOffset:             {0x22, "CommitOffset", true},
		CodeSubscribeAck:             {0x23, "SubscribeAck", false},
		CodeCommitAck:                {0x24, "CommitAck", false},
		CodeTopicResponse:            {0x80, "TopicResponse", false},
		CodeClusterStatusResponse:    {0x81, "ClusterStatusResponse", false},
		CodeErrorResponse:            {0xFF, "ErrorResponse", false},
		// Extensions: known, but not requests of the reference protocol.
		CodeFetchBatches:         {0x13, "FetchBatches", false},
		CodeBatchesResponse:      {0x14, "BatchesResponse", false},
		CodeOffsetForTime:        {0x15, "OffsetForTime", false},
		CodeOffsetResponse:       {0x16, "OffsetResponse", false},
		CodeKeyedBatchesResponse: {0x17, "KeyedBatchesResponse", false},
	}
	for i := range 256 {
		c := Code(i)
		if c.IsExtensionRequest() != (c == CodeFetchBatches || c == CodeOffsetForTime) {
			t.Errorf("%v: IsExtensionRequest = %v", c, c.IsExtensionRequest())
		}
	}
	for c, w := range want {
		if uint8(c) != w.value || c.String() != w.name || !c.Known() || c.IsClientRequest() != w.client {
			t.Errorf("%#x: got %s known=%v client=%v; want %#x %s client=%v",
				uint8(c), c, c.Known(), c.IsClientRequest(), w.value, w.name, w.client)
		}
	}
	known := 0
	for i := range 256 {
		c := Code(i)
		if c.Known() {
			known++
			continue
		}
		if c.IsClientRequest() {
			t.Errorf("unknown %v is a client request", c)
		}
	}
	if known != len(want) {
		t.Errorf("%d known codes, want %d", known, len(want))
	}
	if s := Code(0x0A).String(); s != "Code(0x0a)" {
		t.Errorf("unknown code string %q", s)
	}
}

func TestCodeFromBatchID(t *testing.T) {
	for id, want := range map[uint64]Code{
		0x01:               CodeCreateTopic,
		0x0101:             CodeCreateTopic, // only the low byte counts
		0xFF:               CodeErrorResponse,
		0xFFFFFFFFFFFFFF10: CodeFetch,
		0x80:               CodeTopicResponse,
		0:                  Code(0),
	} {
		if got := CodeFromBatchID(id); got != want {
			t.Errorf("CodeFromBatchID(%#x) = %v, want %v", id, got, want)
		}
	}
}
