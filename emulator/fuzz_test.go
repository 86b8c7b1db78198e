package emulator

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

func FuzzParseJWT(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjEuNX0.c2ln")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("e30=.e30=.")
	f.Fuzz(func(t *testing.T, s string) {
		jt, err := parseJWT(s)
		if err != nil {
			return
		}
		_ = jt.audiences()
		_, _ = jt.claimTime("exp")
		_ = jt.headerString("alg")
		if _, ok := decodeThumbprintHeader(jt.headerString("x5t")); ok && jt.headerString("x5t") == "" {
			t.Error("empty thumbprint decoded")
		}
	})
}

func FuzzParseFilter(f *testing.F) {
	f.Add("appId eq 'x'")
	f.Add("startswith(displayName,'it''s')")
	f.Add("appId eq 'a' and id eq 'b'")
	f.Fuzz(func(t *testing.T, s string) {
		flt, ge := parseFilter(s)
		if ge == nil && flt.prop == "" {
			t.Errorf("parseFilter(%q) accepted a filter without property", s)
		}
	})
}

// FuzzReplaceKeyCredentials feeds arbitrary PATCH values for keyCredentials. Whatever
// comes in, the stored credential survives unless the answer is a success, and every
// credential kept or added is well formed.
func FuzzReplaceKeyCredentials(f *testing.F) {
	now := time.Now().UTC().Truncate(time.Second)
	c := certtest.New(now)
	key := base64.StdEncoding.EncodeToString(c.DER)
	oldID := "0f0f0f0f-0000-4000-8000-000000000001"
	f.Add(`[{"keyId":"` + oldID + `","key":null}]`)
	f.Add(`[{"type":"AsymmetricX509Cert","usage":"Verify","key":"` + key + `"}]`)
	f.Add(`[{"keyId":"` + oldID + `","displayName":"x"}]`)
	f.Add(`null`)
	f.Add(`[{"type":"AsymmetricX509Cert","usage":"Verify","key":"` + key[:40] + "\n" + key[40:] + `","startDateTime":"2020-01-01T00:00:00Z"}]`)
	e := &Emulator{cfg: config{cki: CKIThumbprintHex}}
	base, err := SeedApplication{DisplayName: "a", KeyCredentials: []SeedKeyCredential{{Certificate: c.DER, KeyID: oldID}}}.build(now, CKIThumbprintHex)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if !json.Valid([]byte(body)) {
			return
		}
		a := base.clone()
		out, ge := e.replaceKeyCredentials(a, json.RawMessage(body))
		if ge != nil {
			if ge.status != 400 || ge.message == "" {
				t.Errorf("error %+v is not a 400 with a message", ge)
			}
			return
		}
		for _, k := range out {
			if _, ok := parseGUID(k.KeyID); !ok || len(k.Key) == 0 || k.Type != "AsymmetricX509Cert" || (k.Usage != "Verify" && k.Usage != "Sign") {
				t.Errorf("stored credential %+v is malformed", k)
			}
			if !k.EndDateTime.After(k.StartDateTime) || len([]rune(k.DisplayName)) > 90 {
				t.Errorf("stored credential %+v has bad dates or name", k)
			}
			if strings.EqualFold(k.KeyID, oldID) && string(k.Key) != string(c.DER) {
				t.Error("the existing credential's key changed")
			}
		}
	})
}

func FuzzDecodeFaults(f *testing.F) {
	f.Add(`[{"status":429,"retryAfter":1.5}]`)
	f.Add(`{"reset":true,"times":0}`)
	f.Fuzz(func(t *testing.T, s string) {
		fs, err := decodeFaults(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, fl := range fs {
			if fl.validate() == nil && fl.Times == 0 {
				t.Errorf("fault %+v validated with times 0", fl)
			}
		}
	})
}
