package userfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// endless is a reader that never ends: it fills what it is given with 0xa5, counts the bytes,
// and remembers the buffers it filled.
type endless struct {
	n    int
	bufs [][]byte
}

func (r *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0xa5
	}
	r.n += len(p)
	r.bufs = append(r.bufs, p)
	return len(p), nil
}

// TestReadLimited proves the bound on reading: however long the input and whatever buffer it
// starts from, ReadLimited reads limit+1 bytes, no more, and leaves no outgrown buffer holding
// data.
func TestReadLimited(t *testing.T) {
	const mib = 1 << 20
	for _, limit := range []int{0, 1, 511, 512, 4096, mib} {
		for _, start := range []int{0, 16, 612, limit + 1, 2*limit + 600} {
			r := &endless{}
			got, err := ReadLimited(r, make([]byte, 0, start), limit)
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("ReadLimited(endless, cap %d, %d) error = %v, want ErrTooLarge", start, limit, err)
			}
			if r.n != limit+1 || len(got) != limit+1 {
				t.Errorf("ReadLimited(endless, cap %d, %d) read %d bytes (returned %d), want %d", start, limit, r.n, len(got), limit+1)
			}
			last := &got[:cap(got)][cap(got)-1]
			for i, b := range r.bufs {
				if len(b) == 0 || &b[:cap(b)][cap(b)-1] == last {
					continue // the buffer returned
				}
				if bytes.IndexByte(b, 0xa5) >= 0 {
					t.Errorf("ReadLimited(endless, cap %d, %d): outgrown buffer %d still holds data", start, limit, i)
					break
				}
			}
		}
	}
}

func TestReadLimitedAtLimit(t *testing.T) {
	data := bytes.Repeat([]byte("c"), 5000)
	for _, start := range []int{0, 16, 5000, 5001, 9000} {
		got, err := ReadLimited(bytes.NewReader(data), make([]byte, 0, start), 5000)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("ReadLimited(5000 bytes, cap %d, limit 5000) = %d bytes, %v; want all, nil", start, len(got), err)
		}
	}
	got, err := ReadLimited(bytes.NewReader(data), nil, 4999)
	if !errors.Is(err, ErrTooLarge) || len(got) != 5000 {
		t.Errorf("ReadLimited(5000 bytes, limit 4999) = %d bytes, %v; want 5000, ErrTooLarge", len(got), err)
	}
}

type failing struct{ after int }

func (r *failing) Read(p []byte) (int, error) {
	if r.after <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), r.after)
	r.after -= n
	return n, nil
}

func TestReadLimitedError(t *testing.T) {
	if b, err := ReadLimited(&failing{after: 10}, nil, 100); !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != 10 {
		t.Errorf("ReadLimited(failing) = %d bytes, %v; want 10, io.ErrUnexpectedEOF", len(b), err)
	}
	b, err := ReadLimited(strings.NewReader("abc"), nil, 100)
	if err != nil || string(b) != "abc" {
		t.Errorf("ReadLimited(abc) = %q, %v; want abc", b, err)
	}
}

// TestOpenNoFollow reads a regular file the way the package comment shows.
func TestOpenNoFollow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.cer")
	if err := os.WriteFile(p, []byte("certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenNoFollow(p)
	if err != nil {
		t.Fatalf("OpenNoFollow(regular file) = %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Mode().IsRegular() || !SameFile(fi, st) {
		t.Errorf("the opened file: mode %v, SameFile %v; want a regular file, the same", st.Mode(), SameFile(fi, st))
	}
	data, err := ReadLimited(f, nil, 100)
	if err != nil || string(data) != "certificate" {
		t.Errorf("ReadLimited(opened file) = %q, %v", data, err)
	}
	if _, err := OpenNoFollow(filepath.Join(filepath.Dir(p), "missing.cer")); !errors.Is(err, os.ErrNotExist) || IsBusy(err) {
		t.Errorf("OpenNoFollow(missing) = %v, want fs.ErrNotExist", err)
	}
}
