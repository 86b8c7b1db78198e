package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fill sets every field reachable from v to a distinct non-zero value: slices get one
// element, pointers a filled value, times a distinct UTC second.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(epoch.Add(time.Duration(*n) * time.Second)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint8, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), n)
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), n)
		v.Set(p)
	default:
		panic("fill: unhandled kind " + v.Kind().String() + " in " + v.Type().String())
	}
}

// TestRecordRoundTrip fails when a field of rotation.Rotation or rotation.AuditEntry (or of
// the types inside them) is not carried by the on-disk records: add it to record.go.
func TestRecordRoundTrip(t *testing.T) {
	n := 0
	var r rotation.Rotation
	fill(reflect.ValueOf(&r).Elem(), &n)
	b, err := encodeRotation(r, 42)
	if err != nil {
		t.Fatal(err)
	}
	got, order, err := decodeRotation(b)
	if err != nil {
		t.Fatal(err)
	}
	if order != 42 || !reflect.DeepEqual(got, r) {
		t.Errorf("rotation round trip:\n got  %+v (order %d)\n want %+v (order 42)\nstored %s", got, order, r, b)
	}

	var a rotation.AuditEntry
	fill(reflect.ValueOf(&a).Elem(), &n)
	b, err = encodeAudit(a, a.Seq, "")
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeAudit(a.Seq, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e, a) {
		t.Errorf("audit round trip:\n got  %+v\n want %+v\nstored %s", e, a, b)
	}
}

// goldenRotation and goldenAudit are fixed records whose stored JSON is in testdata.
func goldenRotation() rotation.Rotation {
	at := time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)
	return rotation.Rotation{
		ID:    "6f1d2c3b-4a59-4e8f-9d7c-1b2a3c4d5e6f",
		State: rotation.StateFailed,
		Certificate: certs.Certificate{
			Thumbprint: "0123456789ABCDEF0123456789ABCDEF01234567", SHA256: "AB",
			Subject: "CN=backup.example.com,O=Provider", Issuer: "CN=Provider CA", SerialNumber: "1A2B",
			NotBefore: at.Add(-time.Hour), NotAfter: at.AddDate(1, 0, 0), KeyAlgorithm: "RSA", KeyBits: 2048,
		},
		DER:            []byte{0x30, 0x82, 0x01, 0x0a},
		Source:         rotation.Source{Kind: rotation.SourceDropFolder, FileName: "provider.cer", ArchivedAs: "20261125T193000Z_provider.cer"},
		Target:         rotation.Target{AppID: "11111111-2222-3333-4444-555555555555", ObjectID: "66666666-7777-8888-9999-000000000000", DisplayName: "Backup"},
		KeyID:          "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
		IntentKeyID:    "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
		AlreadyPresent: true,
		Reason:         &certs.Reason{Code: certs.GraphUnavailable, Message: "503 through every retry"},
		Attempts:       6,
		History: []rotation.Event{
			{At: at, State: rotation.StateApplying, Actor: "intake", Note: "dropped as provider.cer"},
			{At: at.Add(time.Minute), State: rotation.StateFailed, Actor: "agent"},
		},
		CreatedAt: at,
		UpdatedAt: at.Add(time.Minute),
	}
}

func goldenAudit() rotation.AuditEntry {
	r := goldenRotation()
	return rotation.AuditEntry{
		Seq: 7, At: r.UpdatedAt, Action: rotation.ActionRotationState, Actor: "agent", Outcome: rotation.OutcomeError,
		RotationID: r.ID, State: rotation.StateFailed, File: "provider.cer", KeyID: r.KeyID,
		Cert: &r.Certificate, Code: certs.GraphUnavailable, Message: "503 through every retry",
	}
}

// checkGolden compares stored JSON with testdata/name (kept indented for review).
func checkGolden(t *testing.T, name string, stored []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var indented bytes.Buffer
	if err := json.Indent(&indented, stored, "", "  "); err != nil {
		t.Fatal(err)
	}
	indented.WriteByte('\n')
	if *update {
		if err := os.WriteFile(path, indented.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(indented.Bytes(), want) {
		t.Errorf("stored JSON differs from %s: the on-disk format changed (bump SchemaVersion and migrate, or undo):\n got  %s\n want %s", path, indented.Bytes(), want)
	}
}

// TestOnDiskFormat pins schema version 2: bucket names, key encodings and the JSON of the
// values, read straight from a state file with bbolt; and checks that the golden JSON (what
// files written by this version hold) still decodes to the same values.
func TestOnDiskFormat(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "certagent.db")
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	r, a := goldenRotation(), goldenAudit()
	if _, _, err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, auditEntry("first"), a); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta(ctx, "snapshot", []byte("opaque")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var storedRotation, storedAudit []byte
	err = db.View(func(tx *bolt.Tx) error {
		var names []string
		tx.ForEach(func(name []byte, _ *bolt.Bucket) error { names = append(names, string(name)); return nil })
		if fmt.Sprint(names) != "[audit meta rotations thumbprints]" {
			t.Errorf("buckets = %v, want [audit meta rotations thumbprints]", names)
		}
		storedRotation = bytes.Clone(tx.Bucket([]byte("rotations")).Get([]byte(r.ID)))
		key := "11111111-2222-3333-4444-555555555555/" + r.Certificate.Thumbprint
		if id := tx.Bucket([]byte("thumbprints")).Get([]byte(key)); string(id) != r.ID {
			t.Errorf("thumbprints[%s] = %q, want %s", key, id, r.ID)
		}
		c := tx.Bucket([]byte("audit")).Cursor()
		var keys []uint64
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				t.Fatalf("audit key %x is not 8 bytes", k)
			}
			keys = append(keys, binary.BigEndian.Uint64(k))
			storedAudit = bytes.Clone(v)
		}
		if fmt.Sprint(keys) != "[1 2]" {
			t.Errorf("audit keys = %v, want [1 2] (big-endian uint64)", keys)
		}
		meta := tx.Bucket([]byte("meta"))
		if v := meta.Get([]byte("_schema")); string(v) != "3" {
			t.Errorf("meta[_schema] = %q, want \"3\"", v)
		}
		if v := meta.Get([]byte("snapshot")); string(v) != "opaque" {
			t.Errorf("meta[snapshot] = %q, want the value as given", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "rotation.v1.json", storedRotation)
	checkGolden(t, "audit.v2.json", storedAudit)

	// What this version and the earlier ones wrote, later versions read back to the same
	// values (version 1 audit records had no chain).
	for _, c := range []struct {
		file  string
		check func(b []byte) (got, want any, err error)
	}{
		{"rotation.v1.json", func(b []byte) (any, any, error) {
			got, _, err := decodeRotation(b)
			return got, goldenRotation(), err
		}},
		{"audit.v1.json", func(b []byte) (any, any, error) {
			got, err := decodeAudit(7, b)
			return got, goldenAudit(), err
		}},
		{"audit.v2.json", func(b []byte) (any, any, error) {
			got, err := decodeAudit(7, b)
			return got, goldenAudit(), err
		}},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		got, want, err := c.check(b)
		if err != nil {
			t.Fatalf("decoding %s: %v", c.file, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decoding %s:\n got  %+v\n want %+v", c.file, got, want)
		}
	}
}
