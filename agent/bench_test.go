package agent_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

// BenchmarkStatusHandler measures GET /api/v1/status through the agent's real handler and
// backend (store, snapshot, problems), without the network.
func BenchmarkStatusHandler(b *testing.B) {
	h := start(b, nil)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		c := certtest.New(time.Now(), certtest.CommonName("bench"+string(rune('a'+i))))
		r, _, err := h.client.Submit(ctx, c.PEM(), "")
		if err != nil {
			b.Fatal(err)
		}
		h.rotation(r.ID, "applied")
	}
	tok := h.token
	handler := h.agent.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8471/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
