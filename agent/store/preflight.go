package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's on-disk meta page, as of go.etcd.io/bbolt v1.5.0 (internal/common/meta.go and
// page.go): a 16-byte page header, then magic, version, page size, flags (uint32 each), the
// root bucket (two uint64), the freelist page, the high-water mark (pgid: the number of pages
// the file holds), the transaction id and an FNV-64a checksum of everything before it.
// bbolt writes these fields in the machine's byte order; every platform certagent ships for
// is little-endian.
const (
	boltMagic         = 0xED0CDAED
	boltVersion       = 2
	boltHeaderSize    = 16
	boltMetaSize      = 64
	boltChecksumStart = 56 // offset of the checksum inside the meta
)

type boltMeta struct {
	pageSize uint32
	pgid     uint64
	txid     uint64
}

// preflight checks, before bbolt maps the file, that it is not shorter than its own meta
// pages say. bbolt maps the whole file and trusts its meta: a truncated file makes it read
// past the end of the mapping, which is a SIGBUS that kills the process (it cannot be
// recovered as a panic). An empty file is left to the caller (Open decides whether it may
// become a new store); anything else that does not look like bbolt is left to bbolt's own
// checks, which fail cleanly.
func preflight(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return nil // bbolt reports it, naming the file
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil
	}
	m0, err0 := readBoltMeta(f, 0)
	if err0 != nil {
		return nil // not bbolt's (or its first meta page is damaged): bbolt says so
	}
	best := m0
	if m1, err := readBoltMeta(f, int64(m0.pageSize)); err == nil && m1.txid > best.txid {
		best = m1
	}
	if need := int64(best.pgid) * int64(best.pageSize); fi.Size() < need {
		return damaged(path, fmt.Errorf("the file is %d bytes but its last transaction needs %d: it was cut short", fi.Size(), need))
	}
	return nil
}

// readBoltMeta reads and checks the meta page at off.
func readBoltMeta(r io.ReaderAt, off int64) (boltMeta, error) {
	var b [boltHeaderSize + boltMetaSize]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		return boltMeta{}, err
	}
	m := b[boltHeaderSize:]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, errors.New("not a bbolt meta page")
	}
	h := fnv.New64a()
	h.Write(m[:boltChecksumStart])
	if h.Sum64() != le.Uint64(m[boltChecksumStart:]) {
		return boltMeta{}, errors.New("meta page checksum mismatch")
	}
	meta := boltMeta{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	if meta.pageSize < 512 || meta.pageSize > 1<<20 {
		return boltMeta{}, errors.New("implausible page size")
	}
	return meta, nil
}
