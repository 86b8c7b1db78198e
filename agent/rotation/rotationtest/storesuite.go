package rotationtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// TestStore is the conformance suite for rotation.Store implementations. open must return a
// new, empty store for each call; TestStore closes nothing (register cleanups in open).
//
// It checks the semantics the engine relies on: Create is an atomic check-and-insert by
// certificate and app (rotation.CertKey) that writes nothing for a duplicate, and keeps the
// same certificate on two apps apart; Get, ByThumbprint and Update report
// rotation.ErrNotFound; Update of an unknown id writes no audit; List filters and orders
// oldest first (CreatedAt, then creation order); audit sequence numbers are strictly
// increasing and unique, Audit pages newest first with Before and Limit (default 100);
// audit entries are written with the Create or Update that carries them; parallel Creates of
// one certificate create exactly one rotation; a cancelled context writes nothing; values
// are copied in and out, never aliased.
//
// Times are compared as instants: a store may return them in UTC.
func TestStore(t *testing.T, open func(t *testing.T) rotation.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s rotation.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateDuplicateThumbprint", testCreateDuplicate},
		{"SameCertificateTwoApps", testSameCertificateTwoApps},
		{"CreateIDTaken", testCreateIDTaken},
		{"CreateInvalid", testCreateInvalid},
		{"NotFound", testNotFound},
		{"Update", testUpdate},
		{"UpdateNotFound", testUpdateNotFound},
		{"UpdateOtherCertificate", testUpdateOtherCertificate},
		{"UpdateOtherApp", testUpdateOtherApp},
		{"List", testList},
		{"AuditAppend", testAuditAppend},
		{"AuditPaging", testAuditPaging},
		{"AuditWithRotation", testAuditWithRotation},
		{"ConcurrentCreateSameThumbprint", testConcurrentCreate},
		{"ConcurrentWrites", testConcurrentWrites},
		{"CancelledContext", testCancelled},
		{"NotAliased", testNotAliased},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// suiteEpoch is the clock of the suite's rotations.
var suiteEpoch = time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)

func randomThumbprint() string {
	var b [20]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// newRotation returns a rotation with every field set, for a fresh random certificate.
func newRotation(created time.Time) rotation.Rotation {
	der := make([]byte, 600)
	rand.Read(der)
	thumb := certs.ThumbprintSHA1(der)
	return rotation.Rotation{
		ID:    rotation.NewGUID(),
		State: rotation.StateApplying,
		Certificate: certs.Certificate{
			Thumbprint: thumb, SHA256: certs.FingerprintSHA256(der),
			Subject: "CN=backup.example.com,O=Provider", Issuer: "CN=Provider CA",
			SerialNumber: "1A2B", NotBefore: created.Add(-time.Hour), NotAfter: created.AddDate(1, 0, 0),
			KeyAlgorithm: "RSA", KeyBits: 2048,
		},
		DER:    der,
		Source: rotation.Source{Kind: rotation.SourceDropFolder, FileName: "provider.cer"},
		Target: rotation.Target{AppID: suiteApp},
		History: []rotation.Event{
			{At: created, State: rotation.StateApplying, Actor: "intake", Note: "dropped as provider.cer"},
		},
		CreatedAt: created,
		UpdatedAt: created,
	}
}

func entry(action rotation.Action, msg string) rotation.AuditEntry {
	return rotation.AuditEntry{At: suiteEpoch, Action: action, Actor: "suite", Outcome: rotation.OutcomeOK, Message: msg}
}

// normRotation makes two equal rotations DeepEqual: instants in UTC without monotonic
// readings, empty slices as nil.
func normRotation(r rotation.Rotation) rotation.Rotation {
	r = r.Clone()
	if len(r.DER) == 0 {
		r.DER = nil
	}
	if len(r.History) == 0 {
		r.History = nil
	}
	r.Certificate = normCert(r.Certificate)
	for i := range r.History {
		r.History[i].At = normTime(r.History[i].At)
	}
	r.CreatedAt, r.UpdatedAt = normTime(r.CreatedAt), normTime(r.UpdatedAt)
	return r
}

func normCert(c certs.Certificate) certs.Certificate {
	c.NotBefore, c.NotAfter = normTime(c.NotBefore), normTime(c.NotAfter)
	return c
}

func normTime(t time.Time) time.Time { return t.Round(0).UTC() }

func normEntry(a rotation.AuditEntry) rotation.AuditEntry {
	a.At = normTime(a.At)
	if a.Cert != nil {
		c := normCert(*a.Cert)
		a.Cert = &c
	}
	return a
}

func checkRotation(t *testing.T, what string, got, want rotation.Rotation) {
	t.Helper()
	if g, w := normRotation(got), normRotation(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v\nwant %+v", what, g, w)
	}
}

// checkEntry compares an audit entry with what was appended (Seq aside).
func checkEntry(t *testing.T, what string, got, want rotation.AuditEntry) {
	t.Helper()
	want.Seq = got.Seq
	if g, w := normEntry(got), normEntry(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v\nwant %+v", what, g, w)
	}
}

func mustCreate(t *testing.T, s rotation.Store, r rotation.Rotation, audit ...rotation.AuditEntry) rotation.Rotation {
	t.Helper()
	got, created, err := s.Create(context.Background(), r, audit...)
	if err != nil || !created {
		t.Fatalf("Create(%s) = created %v, %v; want a new rotation", r.ID, created, err)
	}
	return got
}

// allAudit reads the whole log, newest first, following the pages.
func allAudit(t *testing.T, s rotation.Store) []rotation.AuditEntry {
	t.Helper()
	var out []rotation.AuditEntry
	q := rotation.AuditQuery{Limit: 1000}
	for {
		page, err := s.Audit(context.Background(), q)
		if err != nil {
			t.Fatalf("Audit(%+v): %v", q, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		q.Before = page[len(page)-1].Seq
	}
}

func testCreateGet(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	r := newRotation(suiteEpoch)
	got := mustCreate(t, s, r)
	checkRotation(t, "Create", got, r)

	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatalf("Get(%s): %v", r.ID, err)
	}
	checkRotation(t, "Get", got, r)

	// The thumbprint is found however a person types it.
	colons := strings.Join(splitEvery(strings.ToLower(r.Certificate.Thumbprint), 2), ":")
	for _, thumb := range []string{r.Certificate.Thumbprint, strings.ToLower(r.Certificate.Thumbprint), colons} {
		got, err := s.ByThumbprint(ctx, r.Target.AppID, thumb)
		if err != nil {
			t.Fatalf("ByThumbprint(%s): %v", thumb, err)
		}
		checkRotation(t, "ByThumbprint("+thumb+")", got, r)
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func testCreateDuplicate(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	first := newRotation(suiteEpoch)
	mustCreate(t, s, first, entry(rotation.ActionRotationState, "first"))

	second := newRotation(suiteEpoch.Add(time.Minute))
	second.Certificate = first.Certificate
	second.DER = first.DER
	second.Source.FileName = "again.cer"
	got, created, err := s.Create(ctx, second, entry(rotation.ActionRotationState, "second"))
	if err != nil {
		t.Fatalf("Create(duplicate): %v", err)
	}
	if created {
		t.Errorf("Create(duplicate) created = true, want false")
	}
	checkRotation(t, "Create(duplicate) returned", got, first)
	if _, err := s.Get(ctx, second.ID); !errors.Is(err, rotation.ErrNotFound) {
		t.Errorf("Get(duplicate's id) = %v, want ErrNotFound", err)
	}
	if log := allAudit(t, s); len(log) != 1 || log[0].Message != "first" {
		t.Errorf("audit log after a duplicate Create = %+v, want only the first Create's entry", log)
	}
}

// suiteApp is the app of newRotation's rotations; otherApp is a second one.
const (
	suiteApp = "11111111-2222-3333-4444-555555555555"
	otherApp = "66666666-7777-4888-9999-aaaaaaaaaaaa"
)

// The same certificate dropped for two targets is two rotations, one per app; a second drop
// for either app is a duplicate of that app's rotation only. The app id matches in any case.
func testSameCertificateTwoApps(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	first := newRotation(suiteEpoch)
	mustCreate(t, s, first, entry(rotation.ActionRotationState, "first app"))

	second := newRotation(suiteEpoch.Add(time.Minute))
	second.Certificate, second.DER = first.Certificate, first.DER
	second.Target.AppID = otherApp
	got, created, err := s.Create(ctx, second, entry(rotation.ActionRotationState, "second app"))
	if err != nil || !created {
		t.Fatalf("Create(same certificate, other app) = created %v, %v; want a new rotation", created, err)
	}
	checkRotation(t, "Create(same certificate, other app)", got, second)

	for _, tc := range []struct {
		app  string
		want rotation.Rotation
	}{{suiteApp, first}, {strings.ToUpper(otherApp), second}} {
		got, err := s.ByThumbprint(ctx, tc.app, strings.ToLower(first.Certificate.Thumbprint))
		if err != nil {
			t.Fatalf("ByThumbprint(%s): %v", tc.app, err)
		}
		checkRotation(t, "ByThumbprint("+tc.app+")", got, tc.want)
	}
	if _, err := s.ByThumbprint(ctx, rotation.NewGUID(), first.Certificate.Thumbprint); !errors.Is(err, rotation.ErrNotFound) {
		t.Errorf("ByThumbprint(third app) = %v, want ErrNotFound", err)
	}

	again := newRotation(suiteEpoch.Add(2 * time.Minute))
	again.Certificate, again.DER = first.Certificate, first.DER
	again.Target.AppID = strings.ToUpper(otherApp)
	got, created, err = s.Create(ctx, again)
	if err != nil || created {
		t.Fatalf("Create(same certificate, second app again) = created %v, %v; want the existing rotation", created, err)
	}
	checkRotation(t, "Create(duplicate on the second app)", got, second)
	if rs, err := s.List(ctx, rotation.Filter{}); err != nil || len(rs) != 2 {
		t.Errorf("List = %d rotations, %v; want 2", len(rs), err)
	}
}

func testCreateIDTaken(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	first := newRotation(suiteEpoch)
	mustCreate(t, s, first)
	other := newRotation(suiteEpoch)
	other.ID = first.ID
	_, created, err := s.Create(ctx, other, entry(rotation.ActionRotationState, "other"))
	if err == nil || created || errors.Is(err, rotation.ErrNotFound) {
		t.Fatalf("Create(same id, other certificate) = created %v, %v; want a refusal", created, err)
	}
	if _, err := s.ByThumbprint(ctx, other.Target.AppID, other.Certificate.Thumbprint); !errors.Is(err, rotation.ErrNotFound) {
		t.Errorf("ByThumbprint(refused certificate) = %v, want ErrNotFound", err)
	}
	got, err := s.Get(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkRotation(t, "Get after a refused Create", got, first)
	if log := allAudit(t, s); len(log) != 0 {
		t.Errorf("audit log after a refused Create = %+v, want empty", log)
	}
}

func testCreateInvalid(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(r *rotation.Rotation)
	}{
		{"no id", func(r *rotation.Rotation) { r.ID = "" }},
		{"no thumbprint", func(r *rotation.Rotation) { r.Certificate.Thumbprint = "" }},
		{"no app", func(r *rotation.Rotation) { r.Target.AppID = " " }},
		{"unknown state", func(r *rotation.Rotation) { r.State = "sideways" }},
	}
	for _, tt := range tests {
		r := newRotation(suiteEpoch)
		tt.change(&r)
		if _, created, err := s.Create(ctx, r, entry(rotation.ActionRotationState, tt.name)); err == nil || created {
			t.Errorf("Create(%s) = created %v, %v; want an error", tt.name, created, err)
		}
	}
	if rs, err := s.List(ctx, rotation.Filter{}); err != nil || len(rs) != 0 {
		t.Errorf("List after invalid Creates = %d rotations, %v; want none", len(rs), err)
	}
	if log := allAudit(t, s); len(log) != 0 {
		t.Errorf("audit log after invalid Creates = %+v, want empty", log)
	}
	// Update refuses the same.
	r := newRotation(suiteEpoch)
	mustCreate(t, s, r)
	bad := r.Clone()
	bad.State = "sideways"
	if err := s.Update(ctx, bad); err == nil {
		t.Errorf("Update(unknown state) = nil, want an error")
	}
}

func testNotFound(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	mustCreate(t, s, newRotation(suiteEpoch))
	for _, id := range []string{"", rotation.NewGUID()} {
		if _, err := s.Get(ctx, id); !errors.Is(err, rotation.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
	for _, thumb := range []string{"", randomThumbprint()} {
		if _, err := s.ByThumbprint(ctx, suiteApp, thumb); !errors.Is(err, rotation.ErrNotFound) {
			t.Errorf("ByThumbprint(%q) = %v, want ErrNotFound", thumb, err)
		}
	}
}

func testUpdate(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	r := newRotation(suiteEpoch)
	mustCreate(t, s, r)
	at := suiteEpoch.Add(5 * time.Minute)
	r.State = rotation.StateFailed
	r.KeyID = rotation.NewGUID()
	r.IntentKeyID = r.KeyID
	r.Attempts = 6
	r.AlreadyPresent = true
	r.Reason = &certs.Reason{Code: certs.GraphUnavailable, Message: "503 through every retry"}
	r.Source.ArchivedAs = "20261125T193000Z_provider.cer"
	r.Target.ObjectID, r.Target.DisplayName = rotation.NewGUID(), "Backup"
	r.History = append(r.History, rotation.Event{At: at, State: rotation.StateFailed, Actor: "agent", Note: "gave up"})
	r.UpdatedAt = at
	if err := s.Update(ctx, r, entry(rotation.ActionRotationState, "failed")); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkRotation(t, "Get after Update", got, r)
	got, err = s.ByThumbprint(ctx, r.Target.AppID, r.Certificate.Thumbprint)
	if err != nil {
		t.Fatal(err)
	}
	checkRotation(t, "ByThumbprint after Update", got, r)

	// Clearing optional fields sticks too.
	r.Reason = nil
	r.State = rotation.StateApplying
	r.Attempts = 0
	if err := s.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err = s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkRotation(t, "Get after clearing the reason", got, r)
}

func testUpdateNotFound(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	r := newRotation(suiteEpoch)
	err := s.Update(ctx, r, entry(rotation.ActionRotationState, "ghost"))
	if !errors.Is(err, rotation.ErrNotFound) {
		t.Fatalf("Update(unknown id) = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, r.ID); !errors.Is(err, rotation.ErrNotFound) {
		t.Errorf("Get after Update(unknown id) = %v, want ErrNotFound (Update must not create)", err)
	}
	if _, err := s.ByThumbprint(ctx, r.Target.AppID, r.Certificate.Thumbprint); !errors.Is(err, rotation.ErrNotFound) {
		t.Errorf("ByThumbprint after Update(unknown id) = %v, want ErrNotFound", err)
	}
	if log := allAudit(t, s); len(log) != 0 {
		t.Errorf("audit log after Update(unknown id) = %+v, want empty", log)
	}
}

func testUpdateOtherCertificate(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	r := newRotation(suiteEpoch)
	mustCreate(t, s, r)
	changed := r.Clone()
	changed.Certificate.Thumbprint = randomThumbprint()
	err := s.Update(ctx, changed, entry(rotation.ActionRotationState, "swap"))
	if err == nil || errors.Is(err, rotation.ErrNotFound) {
		t.Fatalf("Update(other certificate) = %v, want a refusal", err)
	}
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkRotation(t, "Get after a refused Update", got, r)
	if _, err := s.ByThumbprint(ctx, changed.Target.AppID, changed.Certificate.Thumbprint); !errors.Is(err, rotation.ErrNotFound) {
		t.Errorf("ByThumbprint(refused thumbprint) = %v, want ErrNotFound", err)
	}
	if log := allAudit(t, s); len(log) != 0 {
		t.Errorf("audit log after a refused Update = %+v, want empty", log)
	}
}

func testUpdateOtherApp(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	r := newRotation(suiteEpoch)
	mustCreate(t, s, r)
	moved := r.Clone()
	moved.Target.AppID = otherApp
	if err := s.Update(ctx, moved, entry(rotation.ActionRotationState, "move")); err == nil || errors.Is(err, rotation.ErrNotFound) {
		t.Fatalf("Update(other app) = %v, want a refusal", err)
	}
	if _, err := s.ByThumbprint(ctx, otherApp, r.Certificate.Thumbprint); !errors.Is(err, rotation.ErrNotFound) {
		t.Errorf("ByThumbprint(other app) after a refused move = %v, want ErrNotFound", err)
	}
	got, err := s.ByThumbprint(ctx, suiteApp, r.Certificate.Thumbprint)
	if err != nil {
		t.Fatal(err)
	}
	checkRotation(t, "ByThumbprint after a refused move", got, r)
	// The app id's case is not a change.
	upper := r.Clone()
	upper.Target.AppID = strings.ToUpper(r.Target.AppID)
	upper.Attempts = 1
	if err := s.Update(ctx, upper); err != nil {
		t.Errorf("Update(app id in upper case) = %v, want nil", err)
	}
}

func testList(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	if rs, err := s.List(ctx, rotation.Filter{}); err != nil || len(rs) != 0 {
		t.Fatalf("List(empty store) = %d, %v; want none", len(rs), err)
	}
	// Created out of time order, two at the same instant: the list is by CreatedAt, then by
	// the order of creation.
	offsets := []time.Duration{3, 1, 2, 2, 0}
	states := []rotation.State{rotation.StateApplied, rotation.StateApplying, rotation.StateApplied, rotation.StatePendingApproval, rotation.StateApplied}
	var rs []rotation.Rotation
	for i, off := range offsets {
		r := newRotation(suiteEpoch.Add(off * time.Hour))
		r.State = states[i]
		mustCreate(t, s, r)
		rs = append(rs, r)
	}
	// An update does not move a rotation in the list.
	rs[1].UpdatedAt = suiteEpoch.Add(100 * time.Hour)
	if err := s.Update(ctx, rs[1]); err != nil {
		t.Fatal(err)
	}
	wantOrder := []int{4, 1, 2, 3, 0}
	tests := []struct {
		filter rotation.Filter
		want   []int
	}{
		{rotation.Filter{}, wantOrder},
		{rotation.Filter{State: rotation.StateApplied}, []int{4, 2, 0}},
		{rotation.Filter{State: rotation.StateApplying}, []int{1}},
		{rotation.Filter{State: rotation.StateFailed}, nil},
	}
	for _, tt := range tests {
		got, err := s.List(ctx, tt.filter)
		if err != nil {
			t.Fatalf("List(%+v): %v", tt.filter, err)
		}
		var gotIDs, wantIDs []string
		for _, r := range got {
			gotIDs = append(gotIDs, r.ID)
		}
		for _, i := range tt.want {
			wantIDs = append(wantIDs, rs[i].ID)
		}
		if !reflect.DeepEqual(gotIDs, wantIDs) {
			t.Errorf("List(%+v) = %v, want %v", tt.filter, gotIDs, wantIDs)
			continue
		}
		for i, r := range got {
			checkRotation(t, fmt.Sprintf("List(%+v)[%d]", tt.filter, i), r, rs[tt.want[i]])
		}
	}
}

func testAuditAppend(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	if log, err := s.Audit(ctx, rotation.AuditQuery{}); err != nil || len(log) != 0 {
		t.Fatalf("Audit(empty) = %v, %v; want none", log, err)
	}
	if err := s.Append(ctx); err != nil {
		t.Fatalf("Append(): %v", err)
	}
	cert := newRotation(suiteEpoch).Certificate
	in := []rotation.AuditEntry{
		entry(rotation.ActionIntakeRejected, "one"),
		{At: suiteEpoch.Add(time.Second), Action: rotation.ActionIntakeRejected, Actor: "intake", Outcome: rotation.OutcomeOK,
			RotationID: rotation.NewGUID(), State: rotation.StateApplying, File: "a.cer", KeyID: rotation.NewGUID(),
			Cert: &cert, Code: certs.Expired, Message: "two"},
		entry(rotation.ActionAgentStart, "three"),
	}
	in[0].Seq = 999 // ignored: the store numbers entries
	if err := s.Append(ctx, in...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	got, err := s.Audit(ctx, rotation.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("Audit = %d entries, want 3", len(got))
	}
	for i := range got {
		checkEntry(t, fmt.Sprintf("Audit[%d]", i), got[i], in[len(in)-1-i])
	}
	if got[2].Seq == 0 || got[1].Seq != got[2].Seq+1 || got[0].Seq != got[1].Seq+1 {
		t.Errorf("sequence numbers newest first = %d, %d, %d; want consecutive, non-zero, in append order", got[0].Seq, got[1].Seq, got[2].Seq)
	}
	if err := s.Append(ctx, entry(rotation.ActionAgentStop, "four")); err != nil {
		t.Fatal(err)
	}
	latest, err := s.Audit(ctx, rotation.AuditQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 || latest[0].Message != "four" || latest[0].Seq <= got[0].Seq {
		t.Errorf("Audit(Limit 1) after another Append = %+v; want entry \"four\" with Seq > %d", latest, got[0].Seq)
	}
}

func testAuditPaging(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	const n = 250
	for i := 0; i < n; i += 10 {
		var batch []rotation.AuditEntry
		for j := i; j < i+10; j++ {
			batch = append(batch, entry(rotation.ActionIntakeRejected, fmt.Sprint(j)))
		}
		if err := s.Append(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	all := allAudit(t, s)
	if len(all) != n {
		t.Fatalf("whole log = %d entries, want %d", len(all), n)
	}
	for i, e := range all {
		if want := fmt.Sprint(n - 1 - i); e.Message != want {
			t.Fatalf("whole log[%d] = %q, want %q (newest first)", i, e.Message, want)
		}
		if i > 0 && e.Seq >= all[i-1].Seq {
			t.Fatalf("whole log[%d].Seq = %d after %d; want strictly decreasing", i, e.Seq, all[i-1].Seq)
		}
	}
	newest, oldest := all[0].Seq, all[n-1].Seq
	tests := []struct {
		q         rotation.AuditQuery
		wantFirst string // Message of the first entry, "" for none
		wantLen   int
	}{
		{rotation.AuditQuery{}, "249", 100},
		{rotation.AuditQuery{Limit: -1}, "249", 100},
		{rotation.AuditQuery{Limit: 7}, "249", 7},
		{rotation.AuditQuery{Limit: 1000}, "249", n},
		{rotation.AuditQuery{Before: newest}, "248", 100},
		{rotation.AuditQuery{Before: newest + 1000}, "249", 100},
		{rotation.AuditQuery{Before: all[100].Seq, Limit: 1000}, "148", 149},
		{rotation.AuditQuery{Before: oldest + 1, Limit: 5}, "0", 1},
		{rotation.AuditQuery{Before: oldest}, "", 0},
	}
	for _, tt := range tests {
		got, err := s.Audit(ctx, tt.q)
		if err != nil {
			t.Fatalf("Audit(%+v): %v", tt.q, err)
		}
		first := ""
		if len(got) > 0 {
			first = got[0].Message
		}
		if len(got) != tt.wantLen || first != tt.wantFirst {
			t.Errorf("Audit(%+v) = %d entries starting %q, want %d starting %q", tt.q, len(got), first, tt.wantLen, tt.wantFirst)
		}
	}
}

func testAuditWithRotation(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	r := newRotation(suiteEpoch)
	created := []rotation.AuditEntry{entry(rotation.ActionIntakeRejected, "accepted"), entry(rotation.ActionRotationState, "created")}
	created[1].RotationID = r.ID
	mustCreate(t, s, r, created...)
	r.State = rotation.StateApplied
	updated := entry(rotation.ActionRotationState, "applied")
	if err := s.Update(ctx, r, updated); err != nil {
		t.Fatal(err)
	}
	// Writes that store nothing log nothing.
	dup := newRotation(suiteEpoch)
	dup.Certificate = r.Certificate
	if _, ok, err := s.Create(ctx, dup, entry(rotation.ActionRotationState, "dup")); err != nil || ok {
		t.Fatalf("Create(duplicate) = %v, %v", ok, err)
	}
	if err := s.Update(ctx, newRotation(suiteEpoch), entry(rotation.ActionRotationState, "ghost")); !errors.Is(err, rotation.ErrNotFound) {
		t.Fatalf("Update(unknown) = %v", err)
	}
	log := allAudit(t, s)
	want := []rotation.AuditEntry{updated, created[1], created[0]}
	if len(log) != len(want) {
		t.Fatalf("audit log = %+v, want %d entries", log, len(want))
	}
	for i := range want {
		checkEntry(t, fmt.Sprintf("audit[%d]", i), log[i], want[i])
	}
}

func testConcurrentCreate(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	base := newRotation(suiteEpoch)
	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		ids     = map[string]bool{}
	)
	for i := 0; i < n; i++ {
		r := newRotation(suiteEpoch)
		r.Certificate, r.DER = base.Certificate, base.DER
		wg.Go(func() {
			got, created, err := s.Create(ctx, r, entry(rotation.ActionRotationState, r.ID))
			if err != nil {
				t.Errorf("Create: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if created {
				winners = append(winners, r.ID)
			}
			ids[got.ID] = true
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("parallel Creates of one certificate created %d rotations, want 1", len(winners))
	}
	if len(ids) != 1 || !ids[winners[0]] {
		t.Errorf("parallel Creates returned rotations %v, want only %s", ids, winners[0])
	}
	if rs, err := s.List(ctx, rotation.Filter{}); err != nil || len(rs) != 1 {
		t.Errorf("List = %d rotations, %v; want 1", len(rs), err)
	}
	if log := allAudit(t, s); len(log) != 1 || log[0].Message != winners[0] {
		t.Errorf("audit log = %+v, want only the winner's entry", log)
	}
}

func testConcurrentWrites(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	rs := make([]rotation.Rotation, writers)
	for w := range writers {
		rs[w] = newRotation(suiteEpoch.Add(time.Duration(w) * time.Second))
		wg.Go(func() {
			if _, _, err := s.Create(ctx, rs[w], entry(rotation.ActionRotationState, fmt.Sprintf("%d create", w))); err != nil {
				t.Errorf("Create: %v", err)
				return
			}
			r := rs[w].Clone()
			for i := range each {
				var err error
				switch i % 3 {
				case 0:
					err = s.Append(ctx, entry(rotation.ActionIntakeRejected, fmt.Sprintf("%d %d", w, i)))
				case 1:
					r.Attempts = i
					err = s.Update(ctx, r, entry(rotation.ActionRotationState, fmt.Sprintf("%d %d", w, i)))
				default:
					_, err = s.List(ctx, rotation.Filter{})
					if err == nil {
						_, err = s.Audit(ctx, rotation.AuditQuery{Limit: 10})
					}
					if err == nil {
						err = s.Append(ctx, entry(rotation.ActionIntakeRejected, fmt.Sprintf("%d %d", w, i)))
					}
				}
				if err != nil {
					t.Errorf("writer %d step %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	log := allAudit(t, s)
	if want := writers * (each + 1); len(log) != want {
		t.Fatalf("audit log = %d entries, want %d", len(log), want)
	}
	// Unique, and each writer's entries in the order it wrote them.
	seen := map[uint64]bool{}
	last := map[int]int{}
	for i := len(log) - 1; i >= 0; i-- {
		e := log[i]
		if seen[e.Seq] {
			t.Fatalf("sequence number %d given twice", e.Seq)
		}
		seen[e.Seq] = true
		var w, step int
		if _, err := fmt.Sscanf(e.Message, "%d %d", &w, &step); err != nil {
			continue // the "create" entries
		}
		if prev, ok := last[w]; ok && step <= prev {
			t.Errorf("writer %d: step %d logged after step %d", w, step, prev)
		}
		last[w] = step
	}
	lastUpdate := 0
	for i := range each {
		if i%3 == 1 {
			lastUpdate = i
		}
	}
	for w := range writers {
		got, err := s.Get(ctx, rs[w].ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := lastUpdate; got.Attempts != want {
			t.Errorf("writer %d: Attempts = %d, want %d (its last update)", w, got.Attempts, want)
		}
	}
}

func testCancelled(t *testing.T, s rotation.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := newRotation(suiteEpoch)
	if _, created, err := s.Create(ctx, r, entry(rotation.ActionRotationState, "x")); !errors.Is(err, context.Canceled) || created {
		t.Errorf("Create(cancelled) = created %v, %v; want context.Canceled", created, err)
	}
	if err := s.Append(ctx, entry(rotation.ActionAgentStart, "x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Append(cancelled) = %v, want context.Canceled", err)
	}
	bg := context.Background()
	mustCreate(t, s, r)
	changed := r.Clone()
	changed.State = rotation.StateApplied
	if err := s.Update(ctx, changed, entry(rotation.ActionRotationState, "x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Update(cancelled) = %v, want context.Canceled", err)
	}
	got, err := s.Get(bg, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkRotation(t, "Get after a cancelled Update", got, r)
	if log := allAudit(t, s); len(log) != 0 {
		t.Errorf("audit log after cancelled writes = %+v, want empty", log)
	}
}

func testNotAliased(t *testing.T, s rotation.Store) {
	ctx := context.Background()
	r := newRotation(suiteEpoch)
	r.Reason = &certs.Reason{Code: certs.GraphError, Message: "original"}
	want := r.Clone()
	cert := r.Certificate
	e := entry(rotation.ActionRotationState, "original")
	e.Cert = &cert

	got, _, err := s.Create(ctx, r, e)
	if err != nil {
		t.Fatal(err)
	}
	// Scribble over what was passed in and what came back.
	scribble := func(r *rotation.Rotation) {
		r.DER[0] ^= 0xff
		r.History[0].Note = "scribbled"
		r.Reason.Message = "scribbled"
	}
	scribble(&r)
	scribble(&got)
	cert.Subject = "CN=scribbled"

	check := func(what string) {
		t.Helper()
		got, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkRotation(t, what, got, want)
		log, err := s.Audit(ctx, rotation.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 1 || log[0].Cert == nil || log[0].Cert.Subject != want.Certificate.Subject {
			t.Fatalf("%s: audit log = %+v, want the original certificate", what, log)
		}
	}
	check("Get after changing Create's input and result")

	for _, read := range []struct {
		name string
		get  func() (rotation.Rotation, error)
	}{
		{"Get", func() (rotation.Rotation, error) { return s.Get(ctx, want.ID) }},
		{"ByThumbprint", func() (rotation.Rotation, error) {
			return s.ByThumbprint(ctx, want.Target.AppID, want.Certificate.Thumbprint)
		}},
		{"List", func() (rotation.Rotation, error) {
			rs, err := s.List(ctx, rotation.Filter{})
			if err != nil || len(rs) != 1 {
				return rotation.Rotation{}, fmt.Errorf("List = %d, %v", len(rs), err)
			}
			return rs[0], nil
		}},
		{"Create(duplicate)", func() (rotation.Rotation, error) {
			dup := newRotation(suiteEpoch)
			dup.Certificate = want.Certificate
			got, _, err := s.Create(ctx, dup)
			return got, err
		}},
	} {
		got, err := read.get()
		if err != nil {
			t.Fatalf("%s: %v", read.name, err)
		}
		scribble(&got)
		check("Get after changing the result of " + read.name)
	}

	log, err := s.Audit(ctx, rotation.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	log[0].Cert.Subject = "CN=scribbled"
	check("Get after changing the result of Audit")

	// Update copies too.
	up := want.Clone()
	up.State = rotation.StateApplied
	if err := s.Update(ctx, up); err != nil {
		t.Fatal(err)
	}
	want = up.Clone()
	scribble(&up)
	check("Get after changing Update's input")
}
