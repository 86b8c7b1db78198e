package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/store"
)

// Store is what the outbox needs of the agent's store: its meta area. Every write is durable
// when it returns nil (store.Store's are fsynced).
type Store interface {
	// ListMeta returns the keys under prefix with their values, in byte order of the keys.
	ListMeta(ctx context.Context, prefix string) ([]store.MetaEntry, error)
	PutMeta(ctx context.Context, key string, value []byte) error
	// DeleteMeta removes key; an absent key is no error.
	DeleteMeta(ctx context.Context, key string) error
}

// outboxPrefix is the outbox's meta key prefix; the key goes on with the entry's sequence
// number as 20 decimal digits, so that byte order is recording order. Part of the store's
// on-disk content: it never changes.
const outboxPrefix = "notify-outbox/"

// entry is one event in the outbox, as stored (JSON). The field names are on disk.
type entry struct {
	Seq        uint64    `json:"seq"`
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Order      string    `json:"order"`
	RotationID string    `json:"rotationId,omitempty"`
	At         time.Time `json:"at"`
	Body       []byte    `json:"body"`
	// Delivered is when the webhook took the event; nil until then. A delivered event stays
	// while something remains to be done about it: its rotation's confirmation (applied), or
	// remembering that this failure was told (failed).
	Delivered *time.Time `json:"delivered,omitempty"`
}

func (e *entry) key() string { return outboxPrefix + fmt.Sprintf("%020d", e.Seq) }

func (e *entry) event() Event {
	return Event{ID: e.ID, Type: e.Type, Order: e.Order, RotationID: e.RotationID, At: e.At, Body: e.Body}
}

// outbox is the persisted list of events, mirrored in memory. The notifier is its only
// writer and serialises calls with its own mutex; the memory copy changes only after the
// store took the change.
type outbox struct {
	st      Store
	log     *slog.Logger
	loaded  bool
	entries []*entry // by Seq
	next    uint64
}

// load reads the outbox from the store, once.
func (o *outbox) load(ctx context.Context) error {
	if o.loaded {
		return nil
	}
	kvs, err := o.st.ListMeta(ctx, outboxPrefix)
	if err != nil {
		return fmt.Errorf("reading the notification outbox: %w", err)
	}
	var es []*entry
	// The next number follows the highest kept: an empty outbox has nothing to be ordered
	// after, so starting again at 1 is fine.
	o.next = 1
	for _, kv := range kvs {
		seq, err := strconv.ParseUint(strings.TrimPrefix(kv.Key, outboxPrefix), 10, 64)
		if err == nil {
			o.next = max(o.next, seq+1)
		}
		var e entry
		if jerr := json.Unmarshal(kv.Value, &e); err != nil || jerr != nil || e.ID == "" {
			// Left in the store for a person to look at; the rest is delivered.
			o.log.Error("skipping a notification outbox entry that does not decode", "key", kv.Key, "err", jerr)
			continue
		}
		e.Seq = seq
		es = append(es, &e)
	}
	// ListMeta's byte order is sequence order (fixed-width numbers).
	o.entries, o.loaded = es, true
	return nil
}

// find returns the entry with the webhook-id id, or nil.
func (o *outbox) find(id string) *entry {
	for _, e := range o.entries {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// add records ev unless an event with its id is there. It reports whether it added.
func (o *outbox) add(ctx context.Context, ev Event) (bool, error) {
	if o.find(ev.ID) != nil {
		return false, nil
	}
	e := &entry{Seq: o.next, ID: ev.ID, Type: ev.Type, Order: ev.Order, RotationID: ev.RotationID, At: ev.At.UTC(), Body: ev.Body}
	if err := o.put(ctx, e); err != nil {
		return false, fmt.Errorf("recording notification %s (%s): %w", ev.ID, ev.Type, err)
	}
	o.next++
	o.entries = append(o.entries, e)
	return true, nil
}

// markDelivered records that the webhook took e at at.
func (o *outbox) markDelivered(ctx context.Context, e *entry, at time.Time) error {
	c := *e
	at = at.UTC()
	c.Delivered = &at
	if err := o.put(ctx, &c); err != nil {
		return fmt.Errorf("recording the delivery of notification %s: %w", e.ID, err)
	}
	*e = c
	return nil
}

// remove deletes e.
func (o *outbox) remove(ctx context.Context, e *entry) error {
	if err := o.st.DeleteMeta(ctx, e.key()); err != nil {
		return fmt.Errorf("removing notification %s from the outbox: %w", e.ID, err)
	}
	o.entries = slices.DeleteFunc(o.entries, func(x *entry) bool { return x == e })
	return nil
}

func (o *outbox) put(ctx context.Context, e *entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return o.st.PutMeta(ctx, e.key(), b)
}
