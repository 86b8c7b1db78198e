// Package rotationtest holds test helpers for the rotation package's interfaces: an
// in-memory Store, a fake tenant of applications for KeyCredentials, and the conformance
// suites (TestStore, TestKeyCredentials) that every implementation of those interfaces runs.
// Only tests import it.
package rotationtest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// MemStore is an in-memory rotation.Store with the semantics of the disk store (TestStore
// checks both): atomic check-and-insert by thumbprint, ErrNotFound for unknown ids, audit
// entries written with their rotation, sequence numbers from 1 that are never reused. It is
// safe for concurrent use and copies values in and out, so callers never share memory with
// it. It keeps no hash chain: the disk store's chain and its JSON-lines files are outside
// rotation.Store and are tested by the store's own tests.
type MemStore struct {
	// BeforeWrite, if set, is called at the start of every write with the method's name
	// ("Create", "Update" or "Append"). An error it returns is the write's result and
	// nothing is written. Set it before the store is used.
	BeforeWrite func(method string) error

	// mu guards the fields below.
	mu     sync.Mutex
	byID   map[string]memRotation
	byCert map[string]string // rotation.CertKey → id
	audit  []rotation.AuditEntry
	seq    uint64 // last audit sequence number given out
	order  uint64 // last creation order given out
}

type memRotation struct {
	r     rotation.Rotation
	order uint64
}

var _ rotation.Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{byID: map[string]memRotation{}, byCert: map[string]string{}}
}

func (m *MemStore) before(ctx context.Context, method string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.BeforeWrite != nil {
		return m.BeforeWrite(method)
	}
	return nil
}

// Create implements rotation.Store.
func (m *MemStore) Create(ctx context.Context, r rotation.Rotation, audit ...rotation.AuditEntry) (rotation.Rotation, bool, error) {
	if err := r.Validate(); err != nil {
		return rotation.Rotation{}, false, fmt.Errorf("storing rotation %s: %w", r.ID, err)
	}
	if err := m.before(ctx, "Create"); err != nil {
		return rotation.Rotation{}, false, fmt.Errorf("storing rotation %s: %w", r.ID, err)
	}
	key := rotation.CertKey(r.Target.AppID, r.Certificate.Thumbprint)
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byCert[key]; ok {
		return m.byID[id].r.Clone(), false, nil
	}
	if _, ok := m.byID[r.ID]; ok {
		return rotation.Rotation{}, false, fmt.Errorf("storing rotation %s: the id is taken by another certificate", r.ID)
	}
	m.order++
	m.byID[r.ID] = memRotation{r: r.Clone(), order: m.order}
	m.byCert[key] = r.ID
	m.appendLocked(audit)
	return r.Clone(), true, nil
}

// Get implements rotation.Store.
func (m *MemStore) Get(ctx context.Context, id string) (rotation.Rotation, error) {
	if err := ctx.Err(); err != nil {
		return rotation.Rotation{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mr, ok := m.byID[id]
	if !ok {
		return rotation.Rotation{}, fmt.Errorf("reading rotation %s: %w", id, rotation.ErrNotFound)
	}
	return mr.r.Clone(), nil
}

// ByThumbprint implements rotation.Store. The thumbprint may be in any case and carry
// separators.
func (m *MemStore) ByThumbprint(ctx context.Context, appID, thumbprint string) (rotation.Rotation, error) {
	if err := ctx.Err(); err != nil {
		return rotation.Rotation{}, err
	}
	key := rotation.CertKey(appID, thumbprint)
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.byCert[key]
	if !ok || key == "" {
		return rotation.Rotation{}, fmt.Errorf("reading rotation for certificate %s on app %s: %w", thumbprint, appID, rotation.ErrNotFound)
	}
	return m.byID[id].r.Clone(), nil
}

// Update implements rotation.Store. The certificate of a rotation cannot change.
func (m *MemStore) Update(ctx context.Context, r rotation.Rotation, audit ...rotation.AuditEntry) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("updating rotation %s: %w", r.ID, err)
	}
	if err := m.before(ctx, "Update"); err != nil {
		return fmt.Errorf("updating rotation %s: %w", r.ID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.byID[r.ID]
	if !ok {
		return fmt.Errorf("updating rotation %s: %w", r.ID, rotation.ErrNotFound)
	}
	if certs.NormalizeThumbprint(old.r.Certificate.Thumbprint) != certs.NormalizeThumbprint(r.Certificate.Thumbprint) {
		return fmt.Errorf("updating rotation %s: the rotation is for certificate %s, not %s", r.ID, old.r.Certificate.Thumbprint, r.Certificate.Thumbprint)
	}
	if !strings.EqualFold(old.r.Target.AppID, r.Target.AppID) {
		return fmt.Errorf("updating rotation %s: the rotation is for app %s, not %s", r.ID, old.r.Target.AppID, r.Target.AppID)
	}
	m.byID[r.ID] = memRotation{r: r.Clone(), order: old.order}
	m.appendLocked(audit)
	return nil
}

// List implements rotation.Store: oldest first, by CreatedAt and then creation order.
func (m *MemStore) List(ctx context.Context, f rotation.Filter) ([]rotation.Rotation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	var items []memRotation
	for _, mr := range m.byID {
		if f.State == "" || mr.r.State == f.State {
			items = append(items, memRotation{r: mr.r.Clone(), order: mr.order})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(items, func(a, b memRotation) int {
		return cmp.Or(a.r.CreatedAt.Compare(b.r.CreatedAt), cmp.Compare(a.order, b.order))
	})
	out := make([]rotation.Rotation, len(items))
	for i, it := range items {
		out[i] = it.r
	}
	return out, nil
}

// Append implements rotation.Store.
func (m *MemStore) Append(ctx context.Context, audit ...rotation.AuditEntry) error {
	if len(audit) == 0 {
		return ctx.Err()
	}
	if err := m.before(ctx, "Append"); err != nil {
		return fmt.Errorf("appending to the audit log: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appendLocked(audit)
	return nil
}

// Audit implements rotation.Store: newest first, Limit zero or negative meaning 100.
func (m *MemStore) Audit(ctx context.Context, q rotation.AuditQuery) ([]rotation.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []rotation.AuditEntry
	for i := len(m.audit) - 1; i >= 0 && len(out) < limit; i-- {
		if q.Before > 0 && m.audit[i].Seq >= q.Before {
			continue
		}
		out = append(out, cloneEntry(m.audit[i]))
	}
	return out, nil
}

// appendLocked adds audit entries under the next sequence numbers. m.mu is held.
func (m *MemStore) appendLocked(audit []rotation.AuditEntry) {
	for _, a := range audit {
		m.seq++
		a = cloneEntry(a)
		a.Seq = m.seq
		m.audit = append(m.audit, a)
	}
}

func cloneEntry(a rotation.AuditEntry) rotation.AuditEntry {
	if a.Cert != nil {
		c := *a.Cert
		a.Cert = &c
	}
	return a
}
