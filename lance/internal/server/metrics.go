package server

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/lance-go/lance/lance/internal/topics"
	"github.com/lance-go/lance/lnc-io/topiclog"
)

// Metrics are the server's Prometheus series, in their own Set so that
// several servers in one test process do not share counters. Names keep
// upstream's lance_* names where upstream had the series; the histograms
// are real Prometheus histograms (le buckets), not quantile gauges.
type Metrics struct {
	set *metrics.Set

	recordsIngested *metrics.Counter
	bytesIngested   *metrics.Counter
	batchesIngested *metrics.Counter
	duplicates      *metrics.Counter
	bytesWritten    *metrics.Counter
	commits         *metrics.Counter
	crcFailures     *metrics.Counter
	fetches         *metrics.Counter
	fetchBytes      *metrics.Counter
	sendfileBytes   *metrics.Counter
	connsTotal      *metrics.Counter
	connsRejected   *metrics.Counter
	backpressure    *metrics.Counter
	ackLatency      *metrics.PrometheusHistogram
	commitLatency   *metrics.PrometheusHistogram
	commitBatches   *metrics.PrometheusHistogram
	commitBytes     *metrics.PrometheusHistogram
	fetchLatency    *metrics.PrometheusHistogram

	errProtocol, errIO, errAuth, errInvalid, errTopic, errTimeout *metrics.Counter
}

// latencyBuckets span 25 µs to about 13 s.
var latencyBuckets = metrics.ExponentialBuckets(25e-6, 2, 20)

func newMetrics(s *Server) *Metrics {
	set := metrics.NewSet()
	m := &Metrics{set: set}
	m.recordsIngested = set.NewCounter("lance_records_ingested_total")
	m.bytesIngested = set.NewCounter("lance_bytes_ingested_total")
	m.batchesIngested = set.NewCounter("lance_batches_ingested_total")
	m.duplicates = set.NewCounter("lance_ingest_duplicates_total")
	m.bytesWritten = set.NewCounter("lance_bytes_written_total")
	m.commits = set.NewCounter("lance_group_commits_total")
	m.crcFailures = set.NewCounter("lance_crc_failures_total")
	m.fetches = set.NewCounter("lance_reads_total")
	m.fetchBytes = set.NewCounter("lance_read_bytes_total")
	m.sendfileBytes = set.NewCounter("lance_zero_copy_send_bytes_total")
	m.connsTotal = set.NewCounter("lance_connections_total")
	m.connsRejected = set.NewCounter("lance_connections_rejected_total")
	m.backpressure = set.NewCounter("lance_backpressure_events_total")
	m.ackLatency = set.NewPrometheusHistogramExt("lance_ack_latency_seconds", latencyBuckets)
	m.commitLatency = set.NewPrometheusHistogramExt("lance_fsync_latency_seconds", latencyBuckets)
	m.commitBatches = set.NewPrometheusHistogramExt("lance_commit_batches", metrics.ExponentialBuckets(1, 2, 14))
	m.commitBytes = set.NewPrometheusHistogramExt("lance_commit_bytes", metrics.ExponentialBuckets(512, 2, 18))
	m.fetchLatency = set.NewPrometheusHistogramExt("lance_fetch_latency_seconds", latencyBuckets)
	errs := func(kind string) *metrics.Counter {
		return set.NewCounter(fmt.Sprintf(`lance_errors_total{type=%q}`, kind))
	}
	m.errProtocol = errs("protocol")
	m.errIO = errs("io")
	m.errAuth = errs("auth")
	m.errInvalid = errs("invalid_request")
	m.errTopic = errs("unknown_topic")
	m.errTimeout = errs("timeout")
	set.NewGauge("lance_connections_active", func() float64 { return float64(s.active.Load()) })
	set.NewGauge("lance_topics", func() float64 { return float64(len(s.reg.List())) })
	set.NewGauge(fmt.Sprintf(`lance_io_backend{backend=%q}`, s.opts.Backend.Kind()), func() float64 { return 1 })
	set.NewGauge("lance_node_id", func() float64 { return float64(s.opts.NodeID) })
	set.NewGauge("lance_ready", func() float64 {
		if s.Ready() == nil {
			return 1
		}
		return 0
	})
	set.NewGauge("lance_storage_failed", func() float64 {
		if s.reg.Failed() != nil {
			return 1
		}
		return 0
	})
	return m
}

// Committed implements topics.Observer.
func (m *Metrics) Committed(_ string, batches int, bytes int64, d time.Duration, err error) {
	if err != nil {
		m.errIO.Inc()
		return
	}
	m.commits.Inc()
	m.bytesWritten.Add(int(bytes))
	m.commitLatency.Update(d.Seconds())
	m.commitBatches.Update(float64(batches))
	m.commitBytes.Update(float64(bytes))
}

var _ topics.Observer = (*Metrics)(nil)

// WritePrometheus writes every series, and the process and Go runtime ones.
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.set.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}

// countErr files err under its kind.
func (m *Metrics) countErr(err error) {
	switch {
	case errors.Is(err, topics.ErrNotFound):
		m.errTopic.Inc()
	case errors.Is(err, topiclog.ErrWriteFailed):
		m.errIO.Inc()
	default:
		m.errInvalid.Inc()
	}
}

// SendfileBytes returns the bytes sent by the zero-copy fetch path.
func (m *Metrics) SendfileBytes() uint64 { return m.sendfileBytes.Get() }

// Gauge registers a gauge computed by f, for series the node adds.
func (m *Metrics) Gauge(name string, f func() float64) { m.set.NewGauge(name, f) }

// CRCFailures returns the batches refused because they failed their CRC.
func (m *Metrics) CRCFailures() uint64 { return m.crcFailures.Get() }
