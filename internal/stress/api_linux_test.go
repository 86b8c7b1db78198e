//go:build linux

package stress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/internal/certtest"
	"github.com/aucloud/certagent/internal/e2e"
)

// apiCall sends one request to the agent's API with its token and returns the status and
// the body (at most 1 MiB of it).
func apiCall(hc *http.Client, base, token, method, path, ctype string, body io.Reader, contentLength int64) (int, []byte, error) {
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		return 0, nil, err
	}
	if contentLength >= 0 {
		req.ContentLength = contentLength
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, nil
}

// zeros is a reader of n zero bytes that never holds them in memory.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// TestHostileAPI sends the local API what a careless or hostile local client could: bodies
// from nothing to 100 MB, every wrong content type, malformed and deeply nested JSON, path
// tricks in ids, and hundreds of idle and slow clients while another is served.
func TestHostileAPI(t *testing.T) {
	needStress(t)
	w := newWorld(t)
	if why := w.waitSettled(60 * time.Second); why != "" {
		t.Fatal(why)
	}
	tokb, err := os.ReadFile(w.cfg.API.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokb))
	base := "http://" + w.cfg.API.Listen
	hc := &http.Client{Timeout: 60 * time.Second}
	pem := certtest.New(time.Now(), certtest.CommonName("api hostile")).PEM()
	problem := func(b []byte) bool {
		var p apitype.Problem
		return json.Unmarshal(b, &p) == nil && p.Code != "" && p.Status >= 400
	}

	// Bodies from 0 bytes to 100 MB.
	var viol []string
	rssBefore, _, _ := e2e.RSS(w.a.PID())
	for _, c := range []struct {
		name   string
		body   func() io.Reader
		length int64
		want   int
	}{
		{"0 bytes", func() io.Reader { return nil }, 0, 400},
		{"1 byte", func() io.Reader { return strings.NewReader("x") }, -1, 422},
		{"1 MiB + 1 with Content-Length", func() io.Reader { return &zeros{1<<20 + 1} }, 1<<20 + 1, 413},
		{"100 MB with Content-Length", func() io.Reader { return &zeros{100 << 20} }, 100 << 20, 413},
		{"100 MB chunked (no length)", func() io.Reader { return io.MultiReader(&zeros{100 << 20}) }, 0, 413},
	} {
		start := time.Now()
		length := c.length
		if c.name == "100 MB chunked (no length)" {
			length = -1
		}
		body := c.body()
		if c.name == "100 MB chunked (no length)" {
			body = io.NopCloser(body) // no length known: chunked
		}
		status, b, err := apiCall(hc, base, token, "POST", "/api/v1/rotations", "application/octet-stream", body, length)
		switch {
		case err != nil && c.want == 413:
			// The server may close the connection once it has refused the body.
		case err != nil:
			viol = append(viol, fmt.Sprintf("%s: %v", c.name, err))
		case status != c.want || !problem(b):
			viol = append(viol, fmt.Sprintf("%s: %d %s, want %d problem", c.name, status, b, c.want))
		}
		if d := time.Since(start); d > 30*time.Second {
			viol = append(viol, fmt.Sprintf("%s took %s", c.name, d))
		}
	}
	_, peak, _ := e2e.RSS(w.a.PID())
	hostileRowAPI(t, "request bodies of 0 B, 1 B, 1 MiB+1, 100 MB (with and without a length)", fmt.Sprintf("400, 422, 413, 413, 413; RSS %.0f→%.0f MB peak", float64(rssBefore)/(1<<20), float64(peak)/(1<<20)), "problem answers; the body never read past 1 MiB", viol)

	// Every wrong content type.
	viol = nil
	types := []string{"text/html", "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
		"image/png", "application/pdf", "application/javascript", "text/csv", "application/jsonx", "not a type", "application/json; charset=utf-16; x=\"", ";"}
	for _, ct := range types {
		status, b, err := apiCall(hc, base, token, "POST", "/api/v1/rotations", ct, bytes.NewReader(pem), -1)
		if err != nil || status != 415 || !problem(b) {
			viol = append(viol, fmt.Sprintf("POST rotations as %q: %d %s %v, want 415 problem", ct, status, b, err))
		}
		status, b, err = apiCall(hc, base, token, "POST", "/api/v1/rotations/x/approve", ct, strings.NewReader(`{"note":"x"}`), -1)
		if err != nil || status != 415 || !problem(b) {
			viol = append(viol, fmt.Sprintf("POST approve as %q: %d %s %v, want 415 problem", ct, status, b, err))
		}
	}
	hostileRowAPI(t, "wrong content types (12 kinds, on a submission and a command)", fmt.Sprintf("%d requests, all 415", 2*len(types)), "415 problem, nothing submitted", viol)

	// Malformed and deeply nested JSON.
	viol = nil
	bodies := []string{`{`, `{"certificate":}`, `{"certificate":"x",}`, `{"certificate":1}`, `[]`, `null`, `{"certificate":"x"}{}`,
		strings.Repeat("[", 1_000_000), `{"a":` + strings.Repeat(`{"a":`, 100_000) + `1` + strings.Repeat(`}`, 100_001),
		"\xff\xfe{}", `{"certificate":"` + strings.Repeat("A", 900_000) + `"}`}
	for _, b := range bodies {
		status, out, err := apiCall(hc, base, token, "POST", "/api/v1/rotations", "application/json", strings.NewReader(b), -1)
		if err != nil || status < 400 || status >= 500 || !problem(out) {
			viol = append(viol, fmt.Sprintf("JSON %.40q: %d %.200s %v, want a 4xx problem", b, status, out, err))
		}
	}
	hostileRowAPI(t, "malformed and deeply nested JSON (1,000,000 '[', 100,000 objects deep)", fmt.Sprintf("%d bodies, all 4xx problems", len(bodies)), "4xx problem; no crash", viol)

	// Path tricks in ids.
	viol = nil
	paths := []string{"/api/v1/rotations/..%2f..%2fstatus", "/api/v1/rotations/%2e%2e", "/api/v1/rotations/%2e%2e%2fstatus",
		"/api/v1/rotations/a%2fb", "/api/v1/rotations/..", "/api/v1/rotations/%00", "/api/v1/rotations/%252e%252e",
		"/api/v1/certificates/..%2f..%2fcredential%2frotate/retire", "/api/v1/certificates/%2e%2e/retire", "/api/v1//rotations",
		"/api/v1/rotations/x/../../credential/rotate", "/api/v1/rotations/x%5c..%5c..%5cstatus"}
	for _, p := range paths {
		for _, m := range []string{"GET", "POST"} {
			status, out, err := apiCall(hc, base, token, m, p, "", nil, 0)
			if err != nil || status >= 500 || (status != 404 && status != 400 && status != 405 && status != 301 && status != 409) {
				viol = append(viol, fmt.Sprintf("%s %s: %d %.200s %v", m, p, status, out, err))
			}
		}
	}
	if es, err := w.audit(); err == nil {
		for _, e := range es {
			if e.Action == "credential" || e.Action == "graph.retire" {
				viol = append(viol, "a path trick reached "+e.Action+": "+e.Message)
			}
		}
	}
	hostileRowAPI(t, "path tricks in ids (../, %2e, encoded slashes and backslashes, NUL)", fmt.Sprintf("%d requests: 400, 404 or 405", 2*len(paths)), "never a 5xx; never another route", viol)

	// Hundreds of idle and slow clients while another is served.
	viol = nil
	const idle, slow = 300, 200
	var conns []net.Conn
	for i := 0; i < idle+slow; i++ {
		c, err := net.Dial("tcp", w.cfg.API.Listen)
		if err != nil {
			viol = append(viol, fmt.Sprintf("connection %d: %v", i, err))
			break
		}
		conns = append(conns, c)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	closedBy := make([]time.Duration, 0, slow)
	var mu sync.Mutex
	slowStart := time.Now()
	for _, c := range conns[min(idle, len(conns)):] {
		wg.Go(func() {
			// A slowloris: one byte of the header every 500 ms.
			req := "GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + "\r\nX-Slow: "
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write([]byte{req[i%len(req)]}); err != nil {
					mu.Lock()
					closedBy = append(closedBy, time.Since(slowStart))
					mu.Unlock()
					return
				}
				c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				if _, err := bufio.NewReader(c).ReadByte(); err != nil && !isTimeout(err) {
					mu.Lock()
					closedBy = append(closedBy, time.Since(slowStart))
					mu.Unlock()
					return
				}
			}
		})
	}
	var lat []time.Duration
	failed := 0
	good := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 400; i++ {
		start := time.Now()
		status, _, err := apiCall(good, base, token, "GET", "/api/v1/status", "", nil, 0)
		if err != nil || status != 200 {
			failed++
		}
		lat = append(lat, time.Since(start))
		time.Sleep(15 * time.Millisecond)
	}
	time.Sleep(time.Until(slowStart.Add(8 * time.Second)))
	mu.Lock()
	dropped := len(closedBy)
	mu.Unlock()
	close(stop)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	if failed > 0 {
		viol = append(viol, fmt.Sprintf("%d of %d status requests failed while %d idle and %d slow clients were connected", failed, len(lat), idle, slow))
	}
	if p99 > 250*time.Millisecond {
		viol = append(viol, fmt.Sprintf("status p99 %s with idle and slow clients connected", p99))
	}
	if dropped < slow*9/10 {
		viol = append(viol, fmt.Sprintf("only %d of %d slow clients were cut off within 8 s (ReadHeaderTimeout is 5 s)", dropped, slow))
	}
	hostileRowAPI(t, fmt.Sprintf("%d idle and %d slow-header clients while another is served", idle, slow),
		fmt.Sprintf("400 status requests, %d failed, p50 %.1f ms p99 %.1f ms; %d slow clients cut off by ReadHeaderTimeout (5 s)", failed, ms(lat[len(lat)/2]), ms(p99), dropped),
		"no starvation; slow clients cut off", viol)

	// The token comparison, checked in the code: a hash of each side and a constant-time
	// comparison, never ==.
	viol = nil
	_, file, _, _ := runtime.Caller(0)
	src, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "api", "middleware.go"))
	if err != nil {
		viol = append(viol, err.Error())
	}
	body := string(src)
	if i := strings.Index(body, "func (s *server) tokenCheck"); i < 0 {
		viol = append(viol, "api/middleware.go has no tokenCheck")
	} else {
		fn := body[i:]
		fn = fn[:strings.Index(fn, "\n}\n")]
		if !strings.Contains(fn, "subtle.ConstantTimeCompare(sum[:], s.tokenHash[:])") || !strings.Contains(fn, "sha256.Sum256") {
			viol = append(viol, "tokenCheck does not compare SHA-256 hashes with subtle.ConstantTimeCompare")
		}
		if strings.Contains(fn, "token ==") || strings.Contains(fn, "== token") || strings.Contains(fn, "bytes.Equal") {
			viol = append(viol, "tokenCheck compares the token with == or bytes.Equal")
		}
	}
	hostileRowAPI(t, "the token compared in constant time (api/middleware.go tokenCheck)", "SHA-256 of both sides, subtle.ConstantTimeCompare", "no early-exit comparison", viol)

	h := &hostile{world: w}
	h.secretsRow(t, "hostile API")
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func hostileRowAPI(t *testing.T, name, hit, target string, viol []string) {
	for _, v := range viol {
		t.Errorf("%s: %s", name, v)
	}
	table.Add(Row{Group: "api", Name: name, Runs: 1, Hit: hit, Violations: len(viol), Target: target})
}
