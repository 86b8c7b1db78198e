package store

import (
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
