package server

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/lance-go/lance/lance/internal/topics"
	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// TestFsyncErrorStopsAcks: once an fdatasync fails, the batch it carried
// is refused, no later batch is acknowledged (on any topic), and the
// server reports not ready.
func TestFsyncErrorStopsAcks(t *testing.T) {
	fs := faultfs.New(vfs.OS(), 1)
	be, err := backend.Open(backend.Config{Kind: backend.KindPwritev2})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	// The topics are made on the plain file system (faultfs does not
	// model directory renames), then the registry is reopened on faultfs.
	dir := t.TempDir()
	setup, err := topics.Open(dir, topics.Options{FS: vfs.OS(), Backend: be, Prealloc: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := setup.Create(name, nil); err != nil {
			t.Fatal(err)
		}
	}
	setup.Close()
	reg, err := topics.Open(dir, topics.Options{FS: fs, Backend: be, Prealloc: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	s, err := New(Options{Registry: reg, Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(t.Context())
	waitReady(t, s)

	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	p := frame.NewParser(frame.Config{})
	next := func() frame.Frame {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			f, ok, err := p.Next()
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				return f
			}
			if _, err := p.Fill(nc); err != nil && err != io.EOF {
				t.Fatal(err)
			}
		}
	}
	d := checksum.IEEE
	send := func(topic uint32, id uint64) {
		nc.Write(frame.AppendIngest(nil, d, id, 1, 1, topic, []byte("payload")))
	}

	send(1, 1)
	if f := next(); f.Kind() != frame.KindAck || f.BatchID != 1 {
		t.Fatalf("before the fault: %+v", f.Header)
	}
	fs.FailSyncs(faultfs.Always())
	send(1, 2)
	f := next()
	if f.Kind() != frame.KindControl || control.CodeFromBatchID(f.BatchID) != control.CodeErrorResponse {
		t.Fatalf("the batch whose fsync failed was answered %+v %q", f.Header, f.Payload)
	}
	if string(f.Payload) != control.StorageUnavailable {
		t.Fatalf("error text %q", f.Payload)
	}
	if s.Ready() == nil {
		t.Fatal("still ready after an fsync error")
	}
	// Syncs would work again: the node must still refuse, on every topic.
	fs.FailSyncs(faultfs.Schedule{})
	for id, topic := range []uint32{1, 2, 1} {
		send(topic, uint64(10+id))
		f := next()
		if f.Kind() != frame.KindControl || string(f.Payload) != control.StorageUnavailable {
			t.Fatalf("batch to topic %d after the fault: %+v %q", topic, f.Header, f.Payload)
		}
	}
	// Reads still work: the acknowledged batch is there.
	nc.Write(frame.AppendControl(nil, d, uint8(control.CodeFetch), control.Fetch{TopicID: 1, MaxBytes: 100}.AppendTo(nil)))
	fr, err := control.DecodeFetchResponse(next().Payload)
	if err != nil || string(fr.Data) != "payload" {
		t.Fatalf("fetch after the fault: %v %q", err, fr.Data)
	}
}

func waitReady(t *testing.T, s *Server) {
	for range 1000 {
		if s.Ready() == nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("server not ready")
}
