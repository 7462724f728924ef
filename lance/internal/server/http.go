package server

import (
	"encoding/json"
	"net/http"
	httppprof "net/http/pprof"
	"sync/atomic"
	"time"
)

// Health is the state the health endpoints report, beyond the server's
// own readiness.
type Health struct {
	// Started is set once start-up (recovery, listeners) is complete.
	Started atomic.Bool
	// Stopping is set when the drain begins: the node is still alive but
	// no longer ready.
	Stopping atomic.Bool
}

// HTTPHandler serves /health/live, /health/ready, /health/startup,
// /health (the same as ready) and /metrics (Prometheus text format).
//
// With pprof, Go's runtime profiles are served under /debug/pprof/ as well.
func (s *Server) HTTPHandler(h *Health, info map[string]string, pprof bool) http.Handler {
	mux := http.NewServeMux()
	if pprof {
		mux.HandleFunc("GET /debug/pprof/", httppprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", httppprof.Trace)
	}
	write := func(w http.ResponseWriter, ok bool, body map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(body)
	}
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, _ *http.Request) {
		write(w, true, map[string]any{"status": "alive"})
	})
	ready := func(w http.ResponseWriter, _ *http.Request) {
		body := map[string]any{
			"node_id":     s.opts.NodeID,
			"backend":     string(s.opts.Backend.Kind()),
			"connections": s.active.Load(),
			"uptime_secs": int64(time.Since(s.started).Seconds()),
		}
		for k, v := range info {
			body[k] = v
		}
		ok := true
		switch err := s.Ready(); {
		case !h.Started.Load():
			ok, body["reason"] = false, "starting"
		case h.Stopping.Load():
			ok, body["reason"] = false, "draining"
		case err != nil:
			ok, body["reason"] = false, err.Error()
		}
		body["ready"] = ok
		write(w, ok, body)
	}
	mux.HandleFunc("GET /health/ready", ready)
	mux.HandleFunc("GET /health", ready)
	mux.HandleFunc("GET /health/startup", func(w http.ResponseWriter, _ *http.Request) {
		ok := h.Started.Load()
		write(w, ok, map[string]any{"started": ok})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.Metrics.WritePrometheus(w)
	})
	return mux
}
