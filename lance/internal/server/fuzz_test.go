package server

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lance-go/lance/lance/internal/topics"
	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// fuzzServer is one server shared by every input of a fuzz run: inputs
// must not crash it, and it must keep answering.
var fuzzServer struct {
	once sync.Once
	s    *Server
	err  error
}

func sharedServer(t testing.TB) *Server {
	fuzzServer.once.Do(func() {
		dir, err := tempDir()
		if err != nil {
			fuzzServer.err = err
			return
		}
		be, err := backend.Open(backend.Config{Kind: backend.KindPwritev2})
		if err != nil {
			fuzzServer.err = err
			return
		}
		reg, err := topics.Open(dir, topics.Options{FS: vfs.OS(), Backend: be, SegmentSize: 1 << 20, Prealloc: -1})
		if err != nil {
			fuzzServer.err = err
			return
		}
		if _, err := reg.Create("fuzz", nil); err != nil {
			fuzzServer.err = err
			return
		}
		fuzzServer.s, fuzzServer.err = New(Options{
			Registry: reg, Backend: be, MaxPayload: 1 << 16,
			IdleTimeout: time.Second, WriteTimeout: time.Second, MaxLongPoll: 10 * time.Millisecond,
		})
	})
	if fuzzServer.err != nil {
		t.Fatal(fuzzServer.err)
	}
	return fuzzServer.s
}

// exchange sends in on a fresh connection, closes the sending side and
// returns everything the server wrote before it closed its side.
func exchange(t testing.TB, s *Server, in []byte) []byte {
	client, srv := net.Pipe()
	s.startConn(srv)
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(client)
		done <- b
	}()
	client.SetWriteDeadline(time.Now().Add(5 * time.Second))
	client.Write(in)
	// net.Pipe has no half-close: give the server time to answer what it
	// read, then close; the server sees EOF and finishes.
	time.Sleep(time.Millisecond)
	client.Close()
	select {
	case out := <-done:
		return out
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection")
	}
	return nil
}

// FuzzConn feeds arbitrary bytes to a connection of a real server (the
// frames of the seed corpus, mutated): the server must not crash or hang,
// and must still answer a keepalive afterwards.
func FuzzConn(f *testing.F) {
	d := checksum.IEEE
	f.Add(frame.AppendKeepalive(nil, d))
	f.Add(frame.AppendIngest(nil, d, 1, 2, 3, 1, []byte("hello")))
	f.Add(frame.AppendIngest(nil, checksum.Castagnoli, 1, 2, 3, 1, []byte("hello")))
	f.Add(frame.AppendIngest(nil, d, 1, 2, 3, 1, nil))
	for _, code := range []control.Code{
		control.CodeCreateTopic, control.CodeDeleteTopic, control.CodeListTopics, control.CodeGetTopic,
		control.CodeSetRetention, control.CodeCreateTopicWithRetention, control.CodeGetClusterStatus,
		control.CodeAuthenticate, control.CodeFetch, control.CodeSubscribe, control.CodeUnsubscribe,
		control.CodeCommitOffset, control.CodeFetchBatches, control.CodeOffsetForTime, 0x77,
	} {
		f.Add(frame.AppendControl(nil, d, uint8(code), []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := sharedServer(t)
		exchange(t, s, in)
		// The server still answers on a new connection.
		client, srv := net.Pipe()
		defer client.Close()
		s.startConn(srv)
		client.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := client.Write(frame.AppendKeepalive(nil, d)); err != nil {
			t.Fatal(err)
		}
		out := make([]byte, frame.HeaderSize)
		if _, err := io.ReadFull(client, out); err != nil {
			t.Fatalf("no keepalive reply: %v", err)
		}
		p := frame.NewParser(frame.Config{})
		p.Write(out)
		if fr, ok, err := p.Next(); err != nil || !ok || fr.Kind() != frame.KindKeepalive {
			t.Fatalf("the server no longer answers a keepalive: %q %v %v", out, ok, err)
		}
	})
}
