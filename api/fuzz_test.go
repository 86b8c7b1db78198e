package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
)

// FuzzDecodeJSON feeds request bodies to the strict decoder of every JSON body the API
// takes: no panic; a body it accepts decodes again to the same value.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"note":"ok"}`, `{"certificate":"x","fileName":"a.cer","target":"t"}`,
		`{"note":1}`, `{"note":"a"} {}`, `[` + strings.Repeat(`[`, 10000), `{"note":"\ud800"}`,
		`{"x":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000) + `}`, "\xef\xbb\xbf{}",
		`{"note":"a","note":"b"}`, `null`, `"str"`, `{"fileName":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var sub apitype.SubmitRequest
		if err := decodeJSON(body, &sub); err == nil {
			again, _ := json.Marshal(sub)
			var back apitype.SubmitRequest
			if err := decodeJSON(again, &back); err != nil || back != sub {
				t.Fatalf("decodeJSON(%q) = %+v; re-encoded %s decodes to %+v, %v", body, sub, again, back, err)
			}
		} else if p, ok := err.(*problemError); !ok || p.p.Status != http.StatusBadRequest {
			t.Fatalf("decodeJSON(%q) error %v is not a 400 problem", body, err)
		}
		var act apitype.ActionRequest
		_ = decodeJSON(body, &act)
		var ret apitype.RetireRequest
		_ = decodeJSON(body, &ret)
	})
}

// FuzzCleanFileName checks the file names a submission may carry: what it keeps is a base
// name of printable characters, never a path, "." or "..", at most maxFileNameLen long.
func FuzzCleanFileName(f *testing.F) {
	for _, s := range []string{"a.cer", "../../etc/passwd", `C:\drop\x.cer`, "..", ".", " ", "a\nb.cer",
		"%2e%2e%2f", "ok/", strings.Repeat("é", 300), "\u202ecod.exe", "\x00", "a/../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := cleanFileName(name)
		if err != nil {
			return
		}
		switch {
		case strings.ContainsAny(got, `/\`):
			t.Fatalf("cleanFileName(%q) = %q: holds a path separator", name, got)
		case got == "." || got == "..":
			t.Fatalf("cleanFileName(%q) = %q", name, got)
		case !utf8.ValidString(got) || strings.IndexFunc(got, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			t.Fatalf("cleanFileName(%q) = %q: not printable", name, got)
		case utf8.RuneCountInString(got) > maxFileNameLen:
			t.Fatalf("cleanFileName(%q) = %q: too long", name, got)
		}
	})
}

// FuzzSubmit posts any body with any content type, disposition and query to POST
// /api/v1/rotations: the answer is never a 5xx, always a problem on refusal, and what reaches
// the backend is the body itself (raw) or the decoded certificate (JSON) with a clean name.
func FuzzSubmit(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), "application/x-pem-file", `attachment; filename="a.cer"`, "")
	f.Add([]byte(`{"certificate":"MIIB","fileName":"../x.cer"}`), "application/json; charset=utf-8", "", "target=a")
	f.Add([]byte(`{"certificate":"MIIB"}`), "application/merge-patch+json", "", "target=a&target=b")
	f.Add([]byte{}, "", "", "")
	f.Add([]byte("x"), "text/html", "", "%zz")
	f.Add([]byte("x"), "multipart/form-data; boundary=", "inline; filename*=UTF-8''%e2%82%ac.cer", "refresh=true")
	fb := &fakeBackend{}
	var got Submission
	fb.SubmitFunc = func(_ context.Context, s Submission) (SubmitResult, error) {
		got = s
		return SubmitResult{Rotation: rotation.Rotation{ID: "r1", State: rotation.StateApplying}, Created: true}, nil
	}
	h := newTestHandler(f, fb, nil)
	f.Fuzz(func(t *testing.T, body []byte, ctype, disposition, query string) {
		got = Submission{}
		target := "/api/v1/rotations"
		if query != "" {
			target += "?" + query
		}
		r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8471"+target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		r.Host = "127.0.0.1:8471"
		r.Header.Set("Authorization", "Bearer "+string(testToken))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if disposition != "" {
			r.Header.Set("Content-Disposition", disposition)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code >= 500:
			t.Fatalf("POST %s (%q, %q) = %d %s", target, ctype, body, w.Code, w.Body)
		case w.Code >= 400:
			var p apitype.Problem
			if json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Code == "" || p.Status != w.Code {
				t.Fatalf("POST %s = %d with a body that is not a problem: %s", target, w.Code, w.Body)
			}
			if got.Data != nil {
				t.Fatalf("POST %s = %d but the backend was called", target, w.Code)
			}
		default:
			if strings.ContainsAny(got.FileName, `/\`) || len(got.Data) == 0 {
				t.Fatalf("POST %s = %d; backend got %+v", target, w.Code, got)
			}
		}
	})
}

// FuzzQuery sends any query string and path id to the routes that take them: never a 5xx,
// and an id reaches the backend unescaped but whole (no route escapes its path through it).
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"state=applied", "limit=10&before=3", "limit=-1", "limit=1e9", "before=18446744073709551616",
		"target=../x", "state=applied&state=failed", "%", "a=%zz", "refresh=maybe", strings.Repeat("x=1&", 500)} {
		f.Add(s, "id-1")
	}
	f.Add("", "..%2f..%2fstatus")
	f.Add("", "%2e%2e")
	f.Add("", "a%00b")
	fb := &fakeBackend{}
	var ids []string
	fb.RotationFunc = func(_ context.Context, id string) (rotation.Rotation, error) {
		ids = append(ids, id)
		return rotation.Rotation{ID: id, State: rotation.StateApplied}, nil
	}
	fb.RotationsFunc = func(context.Context, rotation.Filter) ([]rotation.Rotation, error) { return nil, nil }
	fb.AuditFunc = func(context.Context, rotation.AuditQuery) ([]rotation.AuditEntry, error) { return nil, nil }
	fb.CertificatesFunc = func(context.Context, bool) (apitype.CertificateList, error) { return apitype.CertificateList{}, nil }
	h := newTestHandler(f, fb, nil)
	f.Fuzz(func(t *testing.T, query, id string) {
		for _, path := range []string{"/api/v1/rotations", "/api/v1/audit", "/api/v1/certificates", "/api/v1/rotations/" + id} {
			target := path
			if query != "" {
				target += "?" + query
			}
			r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:8471"+target, nil)
			if err != nil {
				continue
			}
			r.Host = "127.0.0.1:8471"
			r.Header.Set("Authorization", "Bearer "+string(testToken))
			ids = nil
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code >= 500 {
				t.Fatalf("GET %s = %d %s", target, w.Code, w.Body)
			}
			for _, got := range ids {
				if got == "" {
					t.Fatalf("GET %s reached the backend with an empty id", target)
				}
			}
		}
	})
}
