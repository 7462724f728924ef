package control

import (
	"bytes"
	"errors"
	"testing"
)

func TestFetchResponseDecode(t *testing.T) {
	// Shorter than the header.
	for n := range FetchResponseHeaderSize {
		if _, err := DecodeFetchResponse(make([]byte, n)); !errors.Is(err, ErrShortPayload) {
			t.Errorf("%d bytes: %v, want ErrShortPayload", n, err)
		}
	}
	// bytes_returned larger than what follows.
	p := unhex(t, "0000000000000000 03000000 00000000 4142")
	if _, err := DecodeFetchResponse(p); !errors.Is(err, ErrMalformed) {
		t.Errorf("overlong bytes_returned: %v, want ErrMalformed", err)
	}
	// 0xFFFFFFFF must not overflow the bound check.
	p = unhex(t, "0000000000000000 FFFFFFFF 00000000")
	if _, err := DecodeFetchResponse(p); !errors.Is(err, ErrMalformed) {
		t.Errorf("bytes_returned 0xFFFFFFFF: %v, want ErrMalformed", err)
	}
	// Empty reply (end of log).
	r, err := DecodeFetchResponse(unhex(t, "2A00000000000000 00000000 00000000"))
	if err != nil || r.NextOffset != 42 || len(r.Data) != 0 || r.RecordCount != 0 {
		t.Errorf("empty reply = %#v, %v", r, err)
	}
}

func TestFetchResponseDataIsSubslice(t *testing.T) {
	p := unhex(t, "0200000000000000 02000000 01000000 4142 43")
	r, err := DecodeFetchResponse(p)
	if err != nil {
		t.Fatal(err)
	}
	if &r.Data[0] != &p[16] {
		t.Error("Data is a copy, want a subslice of the payload")
	}
	if cap(r.Data) != 2 {
		t.Errorf("cap(Data) = %d; appending to Data could overwrite the trailing bytes", cap(r.Data))
	}
}

func TestFetchResponseAppendNoAlloc(t *testing.T) {
	data := []byte("0123456789")
	m := FetchResponse{NextOffset: 10, RecordCount: 1, Data: data}
	dst := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		_ = m.AppendTo(dst)
		_ = AppendFetchResponseHeader(dst, 1, 2, 3)
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

func TestReferenceRecordCount(t *testing.T) {
	if ReferenceRecordCount(0) != 0 || ReferenceRecordCount(1) != 1 || ReferenceRecordCount(1<<20) != 1 {
		t.Error("ReferenceRecordCount does not follow the reference")
	}
	if MaxFetchData != 16_777_156 {
		t.Errorf("MaxFetchData = %d, the digest says 16,777,156", MaxFetchData)
	}
}

func TestShortReplies(t *testing.T) {
	for n := range CatchingUpSize {
		if _, err := DecodeCatchingUp(make([]byte, n)); !errors.Is(err, ErrShortPayload) {
			t.Errorf("CatchingUp %d bytes: %v", n, err)
		}
	}
	for n := range AckSize {
		if _, err := DecodeSubscribeAck(make([]byte, n)); !errors.Is(err, ErrShortPayload) {
			t.Errorf("SubscribeAck %d bytes: %v", n, err)
		}
		if _, err := DecodeCommitAck(make([]byte, n)); !errors.Is(err, ErrShortPayload) {
			t.Errorf("CommitAck %d bytes: %v", n, err)
		}
	}
	if _, err := DecodeAuthenticateResponse(nil); !errors.Is(err, ErrShortPayload) {
		t.Errorf("AuthenticateResponse empty: %v", err)
	}
}

func TestAuthenticateResponse(t *testing.T) {
	for _, m := range []AuthenticateResponse{
		{Success: true, Message: AuthReplyOK},
		{Message: AuthReplyInvalidToken},
		{Message: AuthReplyNoToken},
		{Message: AuthReplyBadEncoding},
		{Success: true},
	} {
		p := m.AppendTo(nil)
		back, err := DecodeAuthenticateResponse(p)
		if err != nil || back != m {
			t.Errorf("%#v: round trip gave %#v, %v", m, back, err)
		}
	}
	if got := (AuthenticateResponse{Message: AuthReplyInvalidToken}).AppendTo(nil); !bytes.Equal(got, append([]byte{0}, "Invalid token"...)) {
		t.Errorf("failure encoded as %q", got)
	}
	for _, p := range [][]byte{{2}, {0xFF, 'x'}, {1, 0xC0, 0x80}} {
		if _, err := DecodeAuthenticateResponse(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v, want ErrMalformed", p, err)
		}
	}
	// Invalid UTF-8 in the message is repaired on the way out.
	if got := (AuthenticateResponse{Message: "a\xffb"}).AppendTo(nil); string(got) != "\x00a\uFFFDb" {
		t.Errorf("invalid message encoded as %q", got)
	}
}
