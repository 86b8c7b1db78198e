package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// checkMetaKey refuses empty keys and the store's own ("_" prefix).
func checkMetaKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty meta key")
	case strings.HasPrefix(key, "_"):
		return fmt.Errorf("meta key %q is reserved for the store", key)
	}
	return nil
}

// GetMeta returns a copy of the value stored under key, or an error wrapping ErrNoMeta.
func (s *Store) GetMeta(ctx context.Context, key string) ([]byte, error) {
	if err := checkMetaKey(key); err != nil {
		return nil, fmt.Errorf("reading meta %q: %w", key, err)
	}
	var out []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get([]byte(key))
		if v == nil {
			return ErrNoMeta
		}
		out = append([]byte{}, v...)
		return nil
	})
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("reading meta %q", key), err)
	}
	return out, nil
}

// PutMeta stores value under key, replacing any earlier value. The store keeps its own copy.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte) error {
	if err := checkMetaKey(key); err != nil {
		return fmt.Errorf("storing meta %q: %w", key, err)
	}
	v := append([]byte{}, value...)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(key), v)
	})
	if err != nil {
		return s.wrap(fmt.Sprintf("storing meta %q", key), err)
	}
	return nil
}

// DeleteMeta removes key. Removing an absent key is not an error.
func (s *Store) DeleteMeta(ctx context.Context, key string) error {
	if err := checkMetaKey(key); err != nil {
		return fmt.Errorf("deleting meta %q: %w", key, err)
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Delete([]byte(key))
	})
	if err != nil {
		return s.wrap(fmt.Sprintf("deleting meta %q", key), err)
	}
	return nil
}

// MetaEntry is one key and its value in the meta area.
type MetaEntry struct {
	Key   string
	Value []byte
}

// ListMeta returns every key starting with prefix, with a copy of its value, in byte order
// of the keys. The prefix must not be empty or start with "_" (the store's own keys). It
// reads one consistent view: a write that commits meanwhile is either wholly in the list or
// not at all. Nothing under the prefix is an empty list, not an error.
func (s *Store) ListMeta(ctx context.Context, prefix string) ([]MetaEntry, error) {
	if err := checkMetaKey(prefix); err != nil {
		return nil, fmt.Errorf("listing meta %q: %w", prefix, err)
	}
	var out []MetaEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		out = nil
		p := []byte(prefix)
		c := tx.Bucket(bucketMeta).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, MetaEntry{Key: string(k), Value: append([]byte{}, v...)})
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("listing meta %q", prefix), err)
	}
	return out, nil
}
