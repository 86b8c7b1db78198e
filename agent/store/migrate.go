package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/aucloud/certagent/agent/rotation"
)

// Schema versions:
//
//	1  rotations, thumbprints, audit and meta buckets; audit values without a chain
//	2  every audit value carries its seq, prevHash and hash (chain.go)
//	3  the thumbprints index is keyed by app and thumbprint (rotation.CertKey), not by
//	   thumbprint alone, so that one certificate can be rotated onto several apps
//
// Open migrates an older file to SchemaVersion in one transaction: after a crash during the
// migration the file is still the old version, and the next Open migrates it again.

// migrateBatch is how many audit entries the migration reads before rewriting them (bbolt
// forbids changing a bucket while a cursor walks it).
const migrateBatch = 1000

// migrate brings the file from schema version from to SchemaVersion.
func (s *Store) migrate(from int) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if from < 2 {
			n, err := chainExisting(tx)
			if err != nil {
				return err
			}
			s.log.Info("state store migrated: audit entries chained", "path", s.path, "entries", n)
		}
		if from < 3 {
			n, err := reindexByApp(tx)
			if err != nil {
				return err
			}
			s.log.Info("state store migrated: certificates indexed by app", "path", s.path, "rotations", n)
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	})
	if err != nil {
		return fmt.Errorf("migrating state file %s from schema version %d to %d: %w", s.path, from, SchemaVersion, err)
	}
	return nil
}

// reindexByApp rebuilds the thumbprints index from the rotations, keyed by rotation.CertKey.
// It returns how many rotations it indexed. Before version 3 a thumbprint had one rotation
// whatever its app, so no two rotations can claim one key; if a damaged file has two, the
// migration stops rather than hide one.
func reindexByApp(tx *bolt.Tx) (int, error) {
	if err := tx.DeleteBucket(bucketThumbprints); err != nil {
		return 0, fmt.Errorf("dropping the old thumbprint index: %w", err)
	}
	tb, err := tx.CreateBucket(bucketThumbprints)
	if err != nil {
		return 0, err
	}
	n := 0
	err = tx.Bucket(bucketRotations).ForEach(func(id, v []byte) error {
		r, _, err := decodeRotation(v)
		if err != nil {
			return fmt.Errorf("decoding rotation %s: %v: %w", id, err, ErrDamaged)
		}
		key := []byte(rotation.CertKey(r.Target.AppID, r.Certificate.Thumbprint))
		if len(key) == 0 {
			return fmt.Errorf("rotation %s has no app id or thumbprint: %w", id, ErrDamaged)
		}
		if other := tb.Get(key); other != nil {
			return fmt.Errorf("rotations %s and %s are both for %s: %w", other, id, key, ErrDamaged)
		}
		n++
		return tb.Put(key, append([]byte(nil), id...))
	})
	return n, err
}

// chainExisting rewrites every audit entry of a version 1 file with its seq and its place in
// the chain, oldest first. It returns how many entries it chained.
func chainExisting(tx *bolt.Tx) (int, error) {
	ab := tx.Bucket(bucketAudit)
	ab.FillPercent = 1.0
	prev := ""
	n := 0
	var from []byte
	for {
		type kv struct {
			seq uint64
			rec auditRecord
		}
		var batch []kv
		c := ab.Cursor()
		k, v := c.First()
		if from != nil {
			k, v = c.Seek(from)
		}
		for ; k != nil && len(batch) < migrateBatch; k, v = c.Next() {
			if len(k) != 8 {
				return n, fmt.Errorf("audit key %x is not a sequence number: %w", k, ErrDamaged)
			}
			rec, err := decodeAuditRecord(v)
			if err != nil {
				return n, fmt.Errorf("decoding audit entry %d: %v: %w", binary.BigEndian.Uint64(k), err, ErrDamaged)
			}
			batch = append(batch, kv{binary.BigEndian.Uint64(k), rec})
		}
		if len(batch) == 0 {
			return n, nil
		}
		for _, e := range batch {
			rec := e.rec
			rec.sanitize()
			rec.Seq, rec.PrevHash = e.seq, prev
			rec.Hash = hashOf(&rec)
			b, err := json.Marshal(&rec)
			if err != nil {
				return n, err
			}
			if err := ab.Put(seqKey(e.seq), b); err != nil {
				return n, err
			}
			prev = rec.Hash
			n++
		}
		from = seqKey(batch[len(batch)-1].seq + 1)
		if bytes.Equal(from, seqKey(0)) { // wrapped around: the last possible key was done
			return n, nil
		}
	}
}
