// Package store is certagent's embedded, crash-safe state: rotations, the append-only audit
// log, and a small key/value area for the agent's other state, in one file that satisfies
// rotation.Store.
//
// It is built on go.etcd.io/bbolt because bbolt is pure Go (no cgo, so the agent
// cross-compiles to Windows), keeps everything in a single file, gives ACID transactions that
// fsync on commit (after kill -9 or a power loss a transaction either committed or did not;
// the file is never left half-written), offers B+tree buckets for the by-id, by-thumbprint and
// audit-sequence indexes, and locks the file so that a second agent cannot open the same
// state.
//
// # Layout (schema version 3)
//
// The file holds four buckets. Their names, key encodings and the JSON field names of their
// values are the on-disk format: they never change within a schema version.
//
//   - "rotations": rotation id → rotation record (JSON, see rotationRecord).
//   - "thumbprints": the app id (lower case), "/", and the certificate's SHA-1 thumbprint
//     (upper-case hex), as rotation.CertKey makes them → rotation id. One rotation per
//     certificate per app: the same certificate may go to two targets.
//   - "audit": big-endian uint64 sequence number → audit record (JSON, see auditRecord). The
//     sequence comes from the bucket's NextSequence: strictly increasing, never reused. Each
//     record repeats its seq and carries the hash chain (chain.go): prevHash, the previous
//     entry's hash, and hash, SHA-256 over its canonical encoding.
//   - "meta": the agent's key/value area (GetMeta, PutMeta, DeleteMeta, and ListMeta for the
//     keys under a prefix, which parts use as small tables of their own: "notify-outbox/",
//     "expiry-fired/"), plus the reserved keys "_schema"
//     (the schema version as decimal text) and "_id" (the store's identity, identity.go).
//     Keys starting with "_" are the store's own.
//
// Open migrates older versions (migrate.go). Beside the file: its marker certagent.db.id
// (identity.go), and the audit trail's JSON-lines files in audit/ (trail.go), which the
// store appends to after each commit and catches up when it opens.
//
// # Writes
//
// Every write is one bbolt transaction, and concurrent writes are committed together (group
// commit): a caller that finds no commit under way commits its own write at once, and writes
// that arrive while a commit is under way share the next one. A lone writer therefore pays
// one commit (bbolt fsyncs twice) per call with no added delay, and a flood of concurrent
// writers (thousands of rejected files, each audited) pays one commit per group. A write that fails inside a shared
// transaction is retried alone, so that one caller's failure is never another's. bbolt's own
// DB.Batch is not used: it holds every write up to 10ms (its MaxBatchDelay) to gather a
// batch, which made a lone writer two to four times slower in BenchmarkAppend, and under load
// the group commit coalesces as well as Batch does.
//
// A caller that writes one entry at a time and cannot wait for a commit each time (the drop
// folder auditing a flood of rejected files) uses AppendAsync: it queues the entries and a
// background flush commits them in groups, at the price of losing what was queued in the
// last moments before a crash.
//
// # Checking and rebuilding
//
// OpenReadOnly opens a file without changing anything (`certagent store check`, `certagent
// audit verify`); VerifyAudit, VerifyAuditFiles and AuditReport check the hash chain of the
// store and of the files and compare them; ReadAuditFiles and ImportAudit carry the trail
// into a new store (`certagent store rebuild`).
package store
