package e2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// metricValue returns the value of the first sample in a Prometheus text
// exposition whose name and labels are exactly series, or, when series has
// no labels, the first sample of that name with any labels.
func metricValue(body, series string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		rest, ok := strings.CutPrefix(line, series)
		if !ok {
			continue
		}
		if !strings.Contains(series, "{") && strings.HasPrefix(rest, "{") {
			_, rest, _ = strings.Cut(rest, "} ")
			rest = " " + rest
		}
		if !strings.HasPrefix(rest, " ") {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		return v, err == nil
	}
	return 0, false
}

// TestHTTPEndpoints checks the health endpoints and that the metrics
// named by the brief exist and move with traffic.
func TestHTTPEndpoints(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for _, path := range []string{"/health/live", "/health/ready", "/health/startup"} {
		code, body, err := s.get(path)
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s: %d %q %v", path, code, body, err)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Errorf("GET %s: body is not JSON: %q", path, body)
		}
		if path == "/health/ready" && m["ready"] != true {
			t.Errorf("GET /health/ready: %q", body)
		}
	}

	c := s.dial(ieee)
	topic := createTopic(t, c, "metrics").ID
	ingest(t, c, batch{Topic: topic, ID: 1, Records: 5, Data: []byte("five records")})
	ingest(t, c, batch{Topic: topic, ID: 2, Records: 2, Data: []byte("two")})

	code, body, err := s.get("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, name := range []string{"lance_records_ingested_total", "lance_connections_active", "lance_ack_latency_seconds_bucket", "lance_io_backend"} {
		if !strings.Contains(body, "\n"+name) && !strings.HasPrefix(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	check := func(series string, ok func(float64) bool, want string) {
		t.Helper()
		v, found := metricValue(body, series)
		if !found || !ok(v) {
			t.Errorf("/metrics: %s = %v (found %v), want %s", series, v, found, want)
		}
	}
	check("lance_records_ingested_total", func(v float64) bool { return v == 7 }, "7 (the record counts of the two batches)")
	check("lance_connections_active", func(v float64) bool { return v >= 1 }, "at least 1")
	check(`lance_ack_latency_seconds_bucket{le="+Inf"}`, func(v float64) bool { return v == 2 }, "2 (two acks)")
	check("lance_io_backend", func(v float64) bool { return v == 1 }, "1")
}

// TestPprofEndpoint: the runtime profiles are served only when
// http.pprof is on.
func TestPprofEndpoint(t *testing.T) {
	off := startServer(t)
	if code, _, err := off.get("/debug/pprof/"); err != nil || code != 404 {
		t.Fatalf("pprof off: %d, %v", code, err)
	}
	on := startServer(t, "--http-pprof")
	code, body, err := on.get("/debug/pprof/goroutine?debug=1")
	if err != nil || code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("pprof on: %d, %v, %.200s", code, err, body)
	}
}
