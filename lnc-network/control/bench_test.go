package control

import "testing"

var (
	sinkFetch Fetch
	sinkBytes []byte
)

func BenchmarkDecodeFetch(b *testing.B) {
	p := Fetch{TopicID: 1, StartOffset: 123456, MaxBytes: 65536}.AppendTo(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		f, err := DecodeFetch(p)
		if err != nil {
			b.Fatal(err)
		}
		sinkFetch = f
	}
}

func BenchmarkAppendFetchResponseHeader(b *testing.B) {
	dst := make([]byte, 0, FetchResponseHeaderSize)
	b.ReportAllocs()
	for b.Loop() {
		sinkBytes = AppendFetchResponseHeader(dst[:0], 123456, 65536, 1)
	}
}

func BenchmarkAppendFetchResponse64KiB(b *testing.B) {
	m := FetchResponse{NextOffset: 65536, RecordCount: 1, Data: make([]byte, 64<<10)}
	dst := make([]byte, 0, FetchResponseHeaderSize+len(m.Data))
	b.ReportAllocs()
	b.SetBytes(int64(len(m.Data)))
	for b.Loop() {
		sinkBytes = m.AppendTo(dst[:0])
	}
}

func BenchmarkDecodeFetchResponse(b *testing.B) {
	p := FetchResponse{NextOffset: 20, RecordCount: 1, Data: make([]byte, 4096)}.AppendTo(nil)
	b.ReportAllocs()
	for b.Loop() {
		r, err := DecodeFetchResponse(p)
		if err != nil {
			b.Fatal(err)
		}
		sinkBytes = r.Data
	}
}

func BenchmarkAppendTopic(b *testing.B) {
	t := Topic{ID: 1, Name: "my-events", CreatedAt: 1706918400, TopicEpoch: 1}
	dst := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		sinkBytes = t.AppendTo(dst[:0])
	}
}

func BenchmarkDecodeTopic(b *testing.B) {
	p := []byte(`{"created_at":1706918400,"id":1,"name":"my-events","topic_epoch":1}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTopic(p); err != nil {
			b.Fatal(err)
		}
	}
}
