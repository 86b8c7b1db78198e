package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aucloud/certagent/agent/rotation"
)

// The write benchmarks run against a real file with fsync, as the agent does. "serial" is
// one goroutine writing (each write pays its own commit); "parallel" is 16 goroutines per
// CPU (writes arriving together share a commit), as when a flood of rejected files is
// audited by concurrent workers.

func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	e := auditEntry("rejected: not_a_certificate")
	e.File = "20261125T193000Z_junk-000001.cer"
	b.Run("serial", func(b *testing.B) {
		s := openTemp(b)
		for b.Loop() {
			if err := s.Append(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Without the JSON-lines files: what the file write after each commit costs.
	b.Run("serial-no-files", func(b *testing.B) {
		s, err := Open(filepath.Join(b.TempDir(), "certagent.db"), quiet(), NoAuditFiles())
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for b.Loop() {
			if err := s.Append(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := openTemp(b)
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Append(ctx, e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		s := openTemp(b)
		rs := make([]rotation.Rotation, b.N)
		for i := range rs {
			rs[i] = testRotation()
		}
		b.ResetTimer()
		for i := range b.N {
			if _, _, err := s.Create(ctx, rs[i], auditEntry("created")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := openTemp(b)
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := s.Create(ctx, testRotation(), auditEntry("created")); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkAudit reads the newest page of a 10,000-entry log, as GET /api/v1/audit does.
func BenchmarkAudit(b *testing.B) {
	ctx := context.Background()
	s := openTemp(b)
	fillAudit(b, s, 10000)
	for b.Loop() {
		if log, err := s.Audit(ctx, rotation.AuditQuery{}); err != nil || len(log) != 100 {
			b.Fatal(len(log), err)
		}
	}
}

// BenchmarkOpen opens a state file holding 10,000 audit entries and 100 rotations; Open
// checks the whole file.
func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "certagent.db")
	s, err := Open(path, quiet())
	if err != nil {
		b.Fatal(err)
	}
	fillAudit(b, s, 10000)
	for range 100 {
		if _, _, err := s.Create(ctx, testRotation(), auditEntry("created")); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	for b.Loop() {
		s, err := Open(path, quiet())
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

func fillAudit(b *testing.B, s *Store, n int) {
	b.Helper()
	batch := make([]rotation.AuditEntry, 500)
	for i := 0; i < n; i += len(batch) {
		for k := range batch {
			batch[k] = auditEntry(fmt.Sprintf("rejected file %d", i+k))
		}
		if err := s.Append(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendAsync is one goroutine auditing entries one at a time with AppendAsync; the
// time includes the final Flush, so it counts every commit.
func BenchmarkAppendAsync(b *testing.B) {
	ctx := context.Background()
	e := auditEntry("rejected: not_a_certificate")
	e.File = "20261125T193000Z_junk-000001.cer"
	s := openTemp(b)
	b.ResetTimer()
	for range b.N {
		if err := s.AppendAsync(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkChain is the CPU the hash chain adds to one audit entry (a rotation.state entry
// with its certificate): "chained" prepares it, hashes it and encodes the record as
// appendAudit does; "unchained" encodes the record alone, as schema version 1 did.
func BenchmarkChain(b *testing.B) {
	r := goldenRotation()
	e := goldenAudit()
	e.Cert = &r.Certificate
	b.Run("chained", func(b *testing.B) {
		prev := strings.Repeat("ab", HashLen/2)
		for b.Loop() {
			p, err := encodeAll([]rotation.AuditEntry{e})
			if err != nil {
				b.Fatal(err)
			}
			rec := p[0].rec
			rec.Seq, rec.PrevHash = 7, prev
			rec.Hash = chainHash(7, prev, p[0].body)
			if _, err := json.Marshal(&rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchained", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(toAuditRecord(e)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
