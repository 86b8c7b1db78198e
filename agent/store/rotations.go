package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// Create stores r, with its audit entries, unless a rotation for the same certificate on the
// same app exists (rotation.CertKey): then it stores nothing and returns the existing
// rotation and false. The check and the insert are one transaction. A rotation whose id is
// taken by another certificate is refused.
func (s *Store) Create(ctx context.Context, r rotation.Rotation, audit ...rotation.AuditEntry) (rotation.Rotation, bool, error) {
	if err := r.Validate(); err != nil {
		return rotation.Rotation{}, false, fmt.Errorf("storing rotation %s: %w", r.ID, err)
	}
	key := []byte(rotation.CertKey(r.Target.AppID, r.Certificate.Thumbprint))
	records, err := encodeAll(audit)
	if err != nil {
		return rotation.Rotation{}, false, fmt.Errorf("storing rotation %s: %w", r.ID, err)
	}
	var (
		existing rotation.Rotation
		created  bool
	)
	err = s.update(ctx, func(tx *bolt.Tx) error {
		existing, created = rotation.Rotation{}, false
		rb, tb := tx.Bucket(bucketRotations), tx.Bucket(bucketThumbprints)
		if id := tb.Get(key); id != nil {
			got, _, err := getRotation(rb, id)
			if err != nil {
				return err
			}
			existing = got
			return nil
		}
		if rb.Get([]byte(r.ID)) != nil {
			return refusal{errors.New("the id is taken by another certificate")}
		}
		order, err := rb.NextSequence()
		if err != nil {
			return err
		}
		v, err := encodeRotation(r, order)
		if err != nil {
			return err
		}
		if err := rb.Put([]byte(r.ID), v); err != nil {
			return err
		}
		if err := tb.Put(key, []byte(r.ID)); err != nil {
			return err
		}
		created = true
		return s.appendAudit(tx, records)
	})
	if err != nil {
		return rotation.Rotation{}, false, s.wrap("storing rotation "+r.ID, err)
	}
	if !created {
		return existing, false, nil
	}
	// The stored form, so that the caller sees exactly what a Get will return.
	stored := toRotationRecord(r, 0).rotation()
	return stored.Clone(), true, nil
}

// Get returns the rotation with id, or an error wrapping rotation.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (rotation.Rotation, error) {
	var r rotation.Rotation
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		r, _, err = getRotation(tx.Bucket(bucketRotations), []byte(id))
		return err
	})
	if err != nil {
		return rotation.Rotation{}, s.wrap("reading rotation "+id, err)
	}
	return r, nil
}

// ByThumbprint returns the rotation of a certificate thumbprint (any case, separators
// allowed) on the app appID, or an error wrapping rotation.ErrNotFound.
func (s *Store) ByThumbprint(ctx context.Context, appID, thumbprint string) (rotation.Rotation, error) {
	key := rotation.CertKey(appID, thumbprint)
	var r rotation.Rotation
	err := s.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketThumbprints).Get([]byte(key))
		if id == nil || key == "" {
			return rotation.ErrNotFound
		}
		var err error
		r, _, err = getRotation(tx.Bucket(bucketRotations), id)
		if errors.Is(err, rotation.ErrNotFound) {
			return fmt.Errorf("the thumbprint index names rotation %s, which is missing: %w", id, ErrDamaged)
		}
		return err
	})
	if err != nil {
		return rotation.Rotation{}, s.wrap("reading rotation for certificate "+thumbprint+" on app "+appID, err)
	}
	return r, nil
}

// Update replaces the stored rotation with r.ID and appends the audit entries, in one
// transaction. An unknown id gives an error wrapping rotation.ErrNotFound and writes
// nothing. The certificate of a rotation cannot change: a different thumbprint is refused.
func (s *Store) Update(ctx context.Context, r rotation.Rotation, audit ...rotation.AuditEntry) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("updating rotation %s: %w", r.ID, err)
	}
	records, err := encodeAll(audit)
	if err != nil {
		return fmt.Errorf("updating rotation %s: %w", r.ID, err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRotations)
		old, order, err := getRotation(rb, []byte(r.ID))
		if errors.Is(err, rotation.ErrNotFound) {
			return refusal{err}
		}
		if err != nil {
			return err
		}
		if certs.NormalizeThumbprint(old.Certificate.Thumbprint) != certs.NormalizeThumbprint(r.Certificate.Thumbprint) {
			return refusal{fmt.Errorf("the rotation is for certificate %s, not %s", old.Certificate.Thumbprint, r.Certificate.Thumbprint)}
		}
		if rotation.CertKey(old.Target.AppID, old.Certificate.Thumbprint) != rotation.CertKey(r.Target.AppID, r.Certificate.Thumbprint) {
			return refusal{fmt.Errorf("the rotation is for app %s, not %s", old.Target.AppID, r.Target.AppID)}
		}
		v, err := encodeRotation(r, order)
		if err != nil {
			return err
		}
		if err := rb.Put([]byte(r.ID), v); err != nil {
			return err
		}
		return s.appendAudit(tx, records)
	})
	if err != nil {
		return s.wrap("updating rotation "+r.ID, err)
	}
	return nil
}

// List returns the rotations that match f, oldest first (by CreatedAt, then by the order
// they were created in).
func (s *Store) List(ctx context.Context, f rotation.Filter) ([]rotation.Rotation, error) {
	type item struct {
		r     rotation.Rotation
		order uint64
	}
	var items []item
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRotations).ForEach(func(k, v []byte) error {
			r, order, err := decodeRotation(v)
			if err != nil {
				return fmt.Errorf("decoding rotation %s: %w", k, err)
			}
			if f.State == "" || r.State == f.State {
				items = append(items, item{r, order})
			}
			return nil
		})
	})
	if err != nil {
		return nil, s.wrap("listing rotations", err)
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(a.r.CreatedAt.Compare(b.r.CreatedAt), cmp.Compare(a.order, b.order))
	})
	out := make([]rotation.Rotation, len(items))
	for i, it := range items {
		out[i] = it.r
	}
	return out, nil
}

// getRotation reads and decodes one rotation, or returns rotation.ErrNotFound.
func getRotation(rb *bolt.Bucket, id []byte) (rotation.Rotation, uint64, error) {
	if len(id) == 0 {
		return rotation.Rotation{}, 0, rotation.ErrNotFound
	}
	v := rb.Get(id)
	if v == nil {
		return rotation.Rotation{}, 0, rotation.ErrNotFound
	}
	r, order, err := decodeRotation(v)
	if err != nil {
		return rotation.Rotation{}, 0, fmt.Errorf("decoding rotation %s: %w", id, err)
	}
	return r, order, nil
}

// wrap names the operation and the file in an error, keeping ErrClosed, context errors and
// expected outcomes recognisable with errors.Is.
func (s *Store) wrap(op string, err error) error {
	switch {
	case errors.Is(err, ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, rotation.ErrNotFound), errors.Is(err, ErrNoMeta), errors.As(err, new(refusal)):
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s in state file %s: %w", op, s.path, err)
}
