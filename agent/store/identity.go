package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aucloud/certagent/agent/securefile"
)

// A store knows its own identity (a random id in its meta bucket), and the state folder
// keeps a marker file beside it with the same id. The marker is how the folder remembers that
// it had a store: a store file that is missing or empty (0 bytes) while its marker is there
// has been lost, and Open refuses to start over silently with an empty one, which would
// drop every rotation, pending confirmation and the whole audit trail without a word.

// MarkerSuffix ends the name of the marker file beside the store: certagent.db.id.
const MarkerSuffix = ".id"

var keyStoreID = []byte("_id")

// ErrLost is wrapped by Open's error when the state folder had a store that is now missing
// or empty.
var ErrLost = errors.New("state file lost")

// ErrReplaced is wrapped by Open's error when the store file is not the one the state folder
// had (its id differs from the marker's).
var ErrReplaced = errors.New("state file replaced")

// Marker is the content of the marker file.
type Marker struct {
	StoreID   string    `json:"storeId"`
	CreatedAt time.Time `json:"createdAt"`
}

// MarkerPath returns the marker file of the store at path.
func MarkerPath(path string) string { return path + MarkerSuffix }

// ReadMarker reads the marker of the store at path; it wraps fs.ErrNotExist when there is
// none.
func ReadMarker(path string) (Marker, error) {
	b, err := os.ReadFile(MarkerPath(path))
	if err != nil {
		return Marker{}, err
	}
	var m Marker
	if err := json.Unmarshal(b, &m); err != nil || m.StoreID == "" {
		return Marker{}, fmt.Errorf("marker file %s is not readable: %v", MarkerPath(path), err)
	}
	return m, nil
}

func writeMarker(path string, m Marker) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := securefile.WriteFile(MarkerPath(path), append(b, '\n')); err != nil {
		return fmt.Errorf("writing the store's marker file %s: %w", MarkerPath(path), err)
	}
	return nil
}

func newStoreID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkLost runs before a store file is opened. When there is no usable file (missing or 0
// bytes) but the folder shows that it had one, it returns an ErrLost error that says what is
// gone and how to go on.
func checkLost(path, expect string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.Size() > 0:
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil // bbolt reports it, naming the file
	}
	what := "is missing"
	if err == nil {
		what = "is empty (0 bytes)"
	}
	why := expect
	if m, merr := ReadMarker(path); merr == nil {
		why = fmt.Sprintf("this state folder had a store (id %s, created %s; marker %s)", m.StoreID, m.CreatedAt.UTC().Format(time.RFC3339), MarkerPath(path))
	} else if !errors.Is(merr, fs.ErrNotExist) {
		why = merr.Error()
	}
	if why == "" {
		return nil // a new state folder
	}
	return &openError{sentinel: ErrLost, msg: fmt.Sprintf("state file %s %s, but %s: its rotations, pending confirmations and audit trail are not there. "+
		"Restore the file from a backup, or run `certagent store rebuild` to start a new store from the app's certificates and the audit trail (it says what cannot be recovered)", path, what, why)}
}

// adoptIdentity gives a new store its id and marker, gives a store written before ids existed
// its id, and checks that an existing store is the one the marker names. Called with the
// file open, after prepare.
func (s *Store) adoptIdentity() error {
	var id []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		id = append(id, tx.Bucket(bucketMeta).Get(keyStoreID)...)
		return nil
	}); err != nil {
		return err
	}
	m, merr := ReadMarker(s.path)
	if merr != nil && !errors.Is(merr, fs.ErrNotExist) {
		return merr
	}
	if len(id) > 0 {
		s.id = string(id)
		switch {
		case merr == nil && m.StoreID == s.id:
			return nil
		case merr == nil:
			return &openError{sentinel: ErrReplaced, msg: fmt.Sprintf("state file %s (store id %s) is not the store this state folder had (id %s in %s); "+
				"if you restored or copied this file on purpose, remove %s and start again", s.path, s.id, m.StoreID, MarkerPath(s.path), MarkerPath(s.path))}
		}
		return writeMarker(s.path, Marker{StoreID: s.id, CreatedAt: time.Now().UTC()})
	}
	s.id = newStoreID()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyStoreID, []byte(s.id))
	}); err != nil {
		return fmt.Errorf("recording the store's id in %s: %w", s.path, err)
	}
	return writeMarker(s.path, Marker{StoreID: s.id, CreatedAt: time.Now().UTC()})
}

// ID returns the store's identity.
func (s *Store) ID() string { return s.id }
