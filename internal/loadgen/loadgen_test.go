package loadgen

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestConn checks the raw client against net/http's server: status, body length, header
// lines sent, connection reuse, and the answers it must refuse.
func TestConn(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("Authorization") != "Bearer x" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Length", "5")
			w.Write([]byte("hello"))
		case "/chunked":
			w.(http.Flusher).Flush()
			w.Write([]byte("no length"))
		case "/teapot":
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	c := NewConn(addr, "/ok", "Authorization: Bearer x")
	defer c.Close()
	for range 10 {
		status, n, err := c.Do()
		if err != nil || status != http.StatusOK || n != 5 {
			t.Fatalf("Do = %d, %d, %v; want 200, 5, nil", status, n, err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("10 requests in turn used %d connections, want 1", got)
	}
	if status, _, err := NewConn(addr, "/ok").Do(); err != nil || status != http.StatusUnauthorized {
		t.Errorf("without the header: %d, %v; want 401", status, err)
	}
	if status, _, err := NewConn(addr, "/teapot").Do(); err != nil || status != http.StatusTeapot {
		t.Errorf("/teapot: %d, %v; want 418", status, err)
	}
	if _, _, err := NewConn(addr, "/chunked").Do(); err == nil || !strings.Contains(err.Error(), "Content-Length") {
		t.Errorf("a chunked answer: %v, want an error naming Content-Length", err)
	}
}

// TestRun checks the schedule and the figures: every call made, latency at least the
// service time, errors counted with the first kept.
func TestRun(t *testing.T) {
	var calls atomic.Int32
	boom := errors.New("boom")
	r := Run(1000, 50, func() error {
		if calls.Add(1) == 10 {
			return boom
		}
		time.Sleep(time.Millisecond)
		return nil
	})
	if calls.Load() != 50 || len(r.Latency) != 50 || len(r.Service) != 50 || len(r.Lag) != 50 {
		t.Fatalf("calls %d, figures %d/%d/%d; want 50 each", calls.Load(), len(r.Latency), len(r.Service), len(r.Lag))
	}
	if r.Errors != 1 || !errors.Is(r.FirstErr, boom) {
		t.Errorf("errors %d (%v), want 1 (boom)", r.Errors, r.FirstErr)
	}
	// 50 starts at 1,000/s take at least 49 ms.
	if r.Elapsed < 49*time.Millisecond {
		t.Errorf("the run took %s, less than its schedule", r.Elapsed)
	}
	for i := range r.Latency {
		if r.Latency[i] < r.Service[i] {
			t.Fatalf("latency %s shorter than service %s at rank %d", r.Latency[i], r.Service[i], i)
		}
	}
}
