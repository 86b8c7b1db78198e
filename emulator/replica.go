package emulator

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Replication lag (Settings.MaxReplicationLag). Writes apply to the primary state (e.st);
// each write is then noted here as a version that reaches each replica at its own random
// time. A read picks a replica at random (once per request) and sees the newest version that
// replica has. Once every replica has the newest version, the history is dropped.

// replicaVersion is one version of an application and when each replica gets it.
type replicaVersion struct {
	app *app // never changed after it is stored (mutate works on clones)
	// visible[i] is when replica i starts serving this version (zero: always).
	visible []time.Time
}

// replicaHistory is the versions of one application some replica may still serve, oldest
// first; the last is the primary's.
type replicaHistory struct {
	versions []replicaVersion
}

// visibleOn reports whether version j has reached replica i at now.
func (h *replicaHistory) visibleOn(j, i int, now time.Time) bool {
	v := h.versions[j]
	return i >= len(v.visible) || !now.Before(v.visible[i])
}

// prune drops the versions older than the newest one every replica has.
func (h *replicaHistory) prune(now time.Time) {
	for j := len(h.versions) - 1; j > 0; j-- {
		all := true
		for i := range h.versions[j].visible {
			if !h.visibleOn(j, i, now) {
				all = false
				break
			}
		}
		if all {
			h.versions = h.versions[j:]
			return
		}
	}
}

// recordReplicationLocked notes that a write replaced old with a at now. The caller holds
// e.mu.
func (e *Emulator) recordReplicationLocked(old, a *app, now time.Time) {
	if !e.settings.lagOn() {
		return
	}
	key := strings.ToLower(a.ObjectID)
	n := e.settings.replicas()
	h := e.replicas[key]
	if h == nil {
		// Every replica has the version before this write.
		h = &replicaHistory{versions: []replicaVersion{{app: old}}}
		e.replicas[key] = h
	}
	h.prune(now)
	v := replicaVersion{app: a, visible: make([]time.Time, n)}
	for i := range v.visible {
		v.visible[i] = now.Add(e.jitterLocked(e.settings.MaxReplicationLag))
	}
	h.versions = append(h.versions, v)
}

// replicaViewLocked returns the version of a the request's replica serves now, and whether
// it is older than the primary's. The caller holds e.mu.
func (e *Emulator) replicaViewLocked(r *http.Request, a *app) (*app, bool) {
	key := strings.ToLower(a.ObjectID)
	h := e.replicas[key]
	if h == nil {
		return a, false
	}
	now := e.cfg.now()
	h.prune(now)
	last := len(h.versions) - 1
	if last == 0 || h.versions[last].app.Version != a.Version {
		// Caught up, or the history does not end with the primary (it cannot, but a stale
		// history must never hide a write).
		delete(e.replicas, key)
		return a, false
	}
	ri := infoOf(r)
	if ri.replica < 0 {
		ri.replica = e.rng.IntN(e.settings.replicas())
	}
	for j := last; j > 0; j-- {
		if h.visibleOn(j, ri.replica, now) {
			if j == last {
				return a, false
			}
			ri.noteStale(fmt.Sprintf("stale: replica %d serves version %d of %d", ri.replica, h.versions[j].app.Version, a.Version))
			return h.versions[j].app, true
		}
	}
	ri.noteStale(fmt.Sprintf("stale: replica %d serves version %d of %d", ri.replica, h.versions[0].app.Version, a.Version))
	return h.versions[0].app, true
}

// noteStale records in the request log that a read was served stale.
func (ri *reqInfo) noteStale(s string) {
	if strings.Contains(ri.fault, "stale") {
		return
	}
	ri.fault = strings.TrimPrefix(ri.fault+", "+s, ", ")
}
