package rotationtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// The suites must be able to fail: TestSuitesCatchMutants runs them, in a child process,
// against implementations that each break one rule, and checks that the subtests guarding
// that rule fail.

const mutantEnv = "ROTATIONTEST_MUTANT"

type mutant struct {
	run      func(t *testing.T)
	wantFail []string // subtests of TestMutant that must fail
}

var mutants = map[string]mutant{
	"store-duplicates": {
		run: func(t *testing.T) {
			TestStore(t, func(t *testing.T) rotation.Store { return &dupStore{MemStore: NewMemStore()} })
		},
		wantFail: []string{"CreateDuplicateThumbprint", "ConcurrentCreateSameThumbprint"},
	},
	"store-oldest-first": {
		run: func(t *testing.T) {
			TestStore(t, func(t *testing.T) rotation.Store { return &oldestFirstStore{NewMemStore()} })
		},
		wantFail: []string{"AuditAppend", "AuditPaging"},
	},
	"store-aliases": {
		run: func(t *testing.T) {
			TestStore(t, func(t *testing.T) rotation.Store {
				return &aliasStore{MemStore: NewMemStore(), last: map[string]rotation.Rotation{}}
			})
		},
		wantFail: []string{"NotAliased"},
	},
	"store-update-creates": {
		run: func(t *testing.T) {
			TestStore(t, func(t *testing.T) rotation.Store { return &upsertStore{NewMemStore()} })
		},
		wantFail: []string{"UpdateNotFound"},
	},
	"store-loses-audit": {
		run: func(t *testing.T) {
			TestStore(t, func(t *testing.T) rotation.Store { return &noCreateAuditStore{NewMemStore()} })
		},
		wantFail: []string{"AuditWithRotation", "CreateDuplicateThumbprint"},
	},
	"kc-drops-keyless": {
		run: func(t *testing.T) {
			f := NewFakeApps()
			TestKeyCredentials(t, fakeHarness(f, dropKeyless{f}))
		},
		wantFail: []string{"ReplaceKeepsOldAddsNew/oldKeysSent=false", "ReplaceRepeated", "DuplicateCertificate"},
	},
	"kc-no-keys": {
		run: func(t *testing.T) {
			f := NewFakeApps()
			TestKeyCredentials(t, fakeHarness(f, noKeys{f}))
		},
		wantFail: []string{"GetReturnsKeys"},
	},
	"kc-404-transient": {
		run: func(t *testing.T) {
			f := NewFakeApps()
			TestKeyCredentials(t, fakeHarness(f, transient404{f}))
		},
		wantFail: []string{"UnknownApp"},
	},
}

func TestMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("run by TestSuitesCatchMutants")
	}
	mutants[name].run(t)
}

func TestSuitesCatchMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suites in child processes")
	}
	var names []string
	for name := range mutants {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m := mutants[name]
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutant$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed against mutant %s:\n%s", name, out)
			}
			for _, sub := range m.wantFail {
				if !strings.Contains(string(out), "--- FAIL: TestMutant/"+sub+" ") {
					t.Errorf("mutant %s: subtest %s did not fail:\n%s", name, sub, out)
				}
			}
		})
	}
}

// dupStore creates a rotation even when one exists for the certificate.
type dupStore struct {
	*MemStore
	mu   sync.Mutex
	rots []rotation.Rotation
}

func (s *dupStore) Create(ctx context.Context, r rotation.Rotation, audit ...rotation.AuditEntry) (rotation.Rotation, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got, created, err := s.MemStore.Create(ctx, r, audit...)
	if err == nil && !created {
		s.MemStore.mu.Lock()
		s.MemStore.order++
		s.MemStore.byID[r.ID] = memRotation{r: r.Clone(), order: s.MemStore.order}
		s.MemStore.appendLocked(audit)
		s.MemStore.mu.Unlock()
		return r, true, nil
	}
	return got, created, err
}

// oldestFirstStore returns the audit log oldest first.
type oldestFirstStore struct{ *MemStore }

func (s *oldestFirstStore) Audit(ctx context.Context, q rotation.AuditQuery) ([]rotation.AuditEntry, error) {
	log, err := s.MemStore.Audit(ctx, q)
	slices.Reverse(log)
	return log, err
}

// aliasStore hands back the rotation it was given, sharing its slices.
type aliasStore struct {
	*MemStore
	mu   sync.Mutex
	last map[string]rotation.Rotation
}

func (s *aliasStore) Create(ctx context.Context, r rotation.Rotation, audit ...rotation.AuditEntry) (rotation.Rotation, bool, error) {
	got, created, err := s.MemStore.Create(ctx, r, audit...)
	if created {
		s.mu.Lock()
		s.last[r.ID] = r
		s.mu.Unlock()
		return r, created, err
	}
	return got, created, err
}

func (s *aliasStore) Get(ctx context.Context, id string) (rotation.Rotation, error) {
	s.mu.Lock()
	r, ok := s.last[id]
	s.mu.Unlock()
	if ok {
		return r, nil
	}
	return s.MemStore.Get(ctx, id)
}

// upsertStore creates the rotation an Update names when it does not exist.
type upsertStore struct{ *MemStore }

func (s *upsertStore) Update(ctx context.Context, r rotation.Rotation, audit ...rotation.AuditEntry) error {
	err := s.MemStore.Update(ctx, r, audit...)
	if errors.Is(err, rotation.ErrNotFound) {
		_, _, err = s.MemStore.Create(ctx, r, audit...)
	}
	return err
}

// noCreateAuditStore writes Create's audit entries only for duplicates.
type noCreateAuditStore struct{ *MemStore }

func (s *noCreateAuditStore) Create(ctx context.Context, r rotation.Rotation, audit ...rotation.AuditEntry) (rotation.Rotation, bool, error) {
	got, created, err := s.MemStore.Create(ctx, r)
	if err == nil && !created {
		err = s.MemStore.Append(ctx, audit...)
	}
	return got, created, err
}

// dropKeyless treats credentials sent without key bytes as removed.
type dropKeyless struct{ *FakeApps }

func (d dropKeyless) Replace(ctx context.Context, objectID string, creds []certs.KeyCredential) error {
	var keep []certs.KeyCredential
	for _, c := range creds {
		if c.Key != nil {
			keep = append(keep, c)
		}
	}
	return d.FakeApps.Replace(ctx, objectID, keep)
}

// noKeys reads credentials without their key bytes.
type noKeys struct{ *FakeApps }

func (n noKeys) Get(ctx context.Context, appID string) (certs.Application, error) {
	app, err := n.FakeApps.Get(ctx, appID)
	for i := range app.KeyCredentials {
		app.KeyCredentials[i].Key = nil
	}
	return app, err
}

// transient404 reports an unknown app as worth retrying.
type transient404 struct{ *FakeApps }

type retryable struct{ error }

func (retryable) Transient() bool { return true }
func (r retryable) Unwrap() error { return r.error }

func (t transient404) Get(ctx context.Context, appID string) (certs.Application, error) {
	app, err := t.FakeApps.Get(ctx, appID)
	if err != nil {
		err = retryable{err}
	}
	return app, err
}
