package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aucloud/certagent/api/apitype"
)

// TestStatusCache holds GET /api/v1/status's cache to its rules: an answer is reused only
// while the source's version is unchanged, no mutating request has been served since, and
// it is younger than StatusMaxAge; without StatusMaxAge every request is answered anew.
func TestStatusCache(t *testing.T) {
	var uptime, version atomic.Int64
	uptime.Store(1)
	scanErr := error(nil)
	fb := &fakeBackend{
		StatusFunc: func(context.Context) apitype.Status { return apitype.Status{UptimeSeconds: uptime.Load()} },
		ScanFunc:   func(context.Context) error { return scanErr },
	}
	get := func(h http.Handler) int64 {
		t.Helper()
		rec := serve(t, h, req{path: "/api/v1/status"})
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /api/v1/status: %d %s", rec.Code, rec.Body)
		}
		var st apitype.Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if rec.Header().Get("Content-Length") == "" {
			t.Error("no Content-Length")
		}
		return st.UptimeSeconds
	}
	cached := newTestHandler(t, fb, nil, func(c *Config) {
		c.StatusMaxAge = time.Hour
		c.StatusVersion = func() uint64 { return uint64(version.Load()) }
	})
	steps := []struct {
		what   string
		change func()
		want   int64
	}{
		{"first request", func() {}, 1},
		{"a change the source does not count", func() { uptime.Store(2) }, 1},
		{"the version changes", func() { version.Add(1) }, 2},
		{"another uncounted change", func() { uptime.Store(3) }, 2},
		{"a mutating request", func() { serve(t, cached, req{method: http.MethodPost, path: "/api/v1/scan"}) }, 3},
		{"a failed mutating request", func() {
			uptime.Store(4)
			scanErr = errors.New("drop folder gone")
			if rec := serve(t, cached, req{method: http.MethodPost, path: "/api/v1/scan"}); rec.Code < 400 {
				t.Fatalf("POST /api/v1/scan: %d, want an error", rec.Code)
			}
		}, 4},
		{"a read-only request", func() {
			uptime.Store(5)
			serve(t, cached, req{path: "/api/v1/status"})
		}, 4},
	}
	for _, s := range steps {
		s.change()
		if got := get(cached); got != s.want {
			t.Errorf("after %s: uptime %d, want %d", s.what, got, s.want)
		}
	}

	expiring := newTestHandler(t, fb, nil, func(c *Config) { c.StatusMaxAge = time.Nanosecond })
	get(expiring)
	uptime.Store(6)
	time.Sleep(time.Millisecond)
	if got := get(expiring); got != 6 {
		t.Errorf("after StatusMaxAge: uptime %d, want 6", got)
	}

	uncached := newTestHandler(t, fb, nil)
	get(uncached)
	uptime.Store(7)
	if got := get(uncached); got != 7 {
		t.Errorf("without StatusMaxAge: uptime %d, want 7", got)
	}
}

// TestStatusCacheIgnoresCallerCancel: the status made for a caller that went away serves
// others, so it must not be made under that caller's cancelled context.
func TestStatusCacheIgnoresCallerCancel(t *testing.T) {
	fb := &fakeBackend{StatusFunc: func(ctx context.Context) apitype.Status {
		st := apitype.Status{}
		if ctx.Err() != nil {
			st.Problems = []apitype.StatusProblem{{Code: "store_error", Message: ctx.Err().Error()}}
		}
		return st
	}}
	h := newTestHandler(t, fb, nil, func(c *Config) { c.StatusMaxAge = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/status", nil)
	r.Host = testHost
	r.Header.Set("Authorization", "Bearer "+string(testToken))
	h.ServeHTTP(httptest.NewRecorder(), r)
	rec := serve(t, h, req{path: "/api/v1/status"})
	var st apitype.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Problems) != 0 {
		t.Errorf("the next caller sees %v, made under the first caller's cancelled context", st.Problems)
	}
}
