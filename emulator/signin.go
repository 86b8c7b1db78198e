package emulator

import (
	"strings"
	"time"
)

// Sign-in propagation (Settings.SignInAddDelay, SignInRemoveDelay). Entra's token service
// learns about credential changes some time after Graph acknowledged them: a new key is
// refused as unknown for a while, a removed one keeps working for a while. The token
// endpoint therefore checks credentials against signInViewLocked, not the primary state.

// signInPropagation is what the token endpoint has not caught up with yet. Keys are the
// application's object id and the credential's keyId, both lower case.
type signInPropagation struct {
	// pending holds when each recently added credential starts signing in.
	pending map[string]time.Time
	// removedKeys and removedPasswords hold, per application object id, credentials removed
	// but still accepted until their time.
	removedKeys      map[string][]removedKey
	removedPasswords map[string][]removedPassword
}

type removedKey struct {
	k     keyCred
	until time.Time
}

type removedPassword struct {
	p     passwordCred
	until time.Time
}

func newSignInPropagation() signInPropagation {
	return signInPropagation{
		pending:          map[string]time.Time{},
		removedKeys:      map[string][]removedKey{},
		removedPasswords: map[string][]removedPassword{},
	}
}

func credKey(objectID, keyID string) string {
	return strings.ToLower(objectID) + "/" + strings.ToLower(keyID)
}

// recordSignInLocked notes the credentials a write added to or removed from an application
// (old is nil for a new application). The caller holds e.mu.
func (e *Emulator) recordSignInLocked(old, a *app, now time.Time) {
	p := &e.signIn
	obj := strings.ToLower(a.ObjectID)
	had := map[string]bool{}
	if old != nil {
		for _, k := range old.KeyCredentials {
			had[strings.ToLower(k.KeyID)] = true
		}
		for _, pc := range old.PasswordCredentials {
			had[strings.ToLower(pc.KeyID)] = true
		}
	}
	has := map[string]bool{}
	added := func(keyID string) {
		has[strings.ToLower(keyID)] = true
		if had[strings.ToLower(keyID)] {
			return
		}
		if e.reAddedLocked(obj, keyID) {
			return // the token service never forgot it
		}
		if d := e.settings.SignInAddDelay + e.jitterLocked(e.settings.SignInAddJitter); d > 0 {
			p.pending[credKey(a.ObjectID, keyID)] = now.Add(d)
		}
	}
	for _, k := range a.KeyCredentials {
		added(k.KeyID)
	}
	for _, pc := range a.PasswordCredentials {
		added(pc.KeyID)
	}
	if old == nil {
		return
	}
	removeDelay := func() time.Duration {
		return e.settings.SignInRemoveDelay + e.jitterLocked(e.settings.SignInRemoveJitter)
	}
	for _, k := range old.KeyCredentials {
		if has[strings.ToLower(k.KeyID)] {
			continue
		}
		pendingUntil, wasPending := p.pending[credKey(a.ObjectID, k.KeyID)]
		delete(p.pending, credKey(a.ObjectID, k.KeyID))
		if wasPending && now.Before(pendingUntil) {
			continue // never reached the token service
		}
		if d := removeDelay(); d > 0 {
			p.removedKeys[obj] = append(p.removedKeys[obj], removedKey{k: k, until: now.Add(d)})
		}
	}
	for _, pc := range old.PasswordCredentials {
		if has[strings.ToLower(pc.KeyID)] {
			continue
		}
		pendingUntil, wasPending := p.pending[credKey(a.ObjectID, pc.KeyID)]
		delete(p.pending, credKey(a.ObjectID, pc.KeyID))
		if wasPending && now.Before(pendingUntil) {
			continue
		}
		if d := removeDelay(); d > 0 {
			p.removedPasswords[obj] = append(p.removedPasswords[obj], removedPassword{p: pc, until: now.Add(d)})
		}
	}
}

// reAddedLocked drops keyID from the credentials removed from obj but still signing in, and
// reports whether it was there. The caller holds e.mu.
func (e *Emulator) reAddedLocked(obj, keyID string) bool {
	p := &e.signIn
	for i, rk := range p.removedKeys[obj] {
		if strings.EqualFold(rk.k.KeyID, keyID) {
			p.removedKeys[obj] = append(p.removedKeys[obj][:i:i], p.removedKeys[obj][i+1:]...)
			return true
		}
	}
	for i, rp := range p.removedPasswords[obj] {
		if strings.EqualFold(rp.p.KeyID, keyID) {
			p.removedPasswords[obj] = append(p.removedPasswords[obj][:i:i], p.removedPasswords[obj][i+1:]...)
			return true
		}
	}
	return false
}

// signInViewLocked returns a as the token endpoint sees it at now: without the credentials
// added too recently, with those removed too recently. It returns a itself when nothing is
// pending. The caller holds e.mu.
func (e *Emulator) signInViewLocked(a *app, now time.Time) *app {
	p := &e.signIn
	obj := strings.ToLower(a.ObjectID)
	changed := false
	var keys []keyCred
	for _, k := range a.KeyCredentials {
		if e.pendingLocked(a, k.KeyID, now) {
			changed = true
			continue
		}
		keys = append(keys, k)
	}
	var passwords []passwordCred
	for _, pc := range a.PasswordCredentials {
		if e.pendingLocked(a, pc.KeyID, now) {
			changed = true
			continue
		}
		passwords = append(passwords, pc)
	}
	var keptKeys []removedKey
	for _, rk := range p.removedKeys[obj] {
		if now.Before(rk.until) {
			keptKeys = append(keptKeys, rk)
			keys = append(keys, rk.k)
			changed = true
		}
	}
	setOrDelete(p.removedKeys, obj, keptKeys)
	var keptPasswords []removedPassword
	for _, rp := range p.removedPasswords[obj] {
		if now.Before(rp.until) {
			keptPasswords = append(keptPasswords, rp)
			passwords = append(passwords, rp.p)
			changed = true
		}
	}
	setOrDelete(p.removedPasswords, obj, keptPasswords)
	if !changed {
		return a
	}
	b := *a
	b.KeyCredentials, b.PasswordCredentials = keys, passwords
	return &b
}

func setOrDelete[T any](m map[string][]T, k string, v []T) {
	if len(v) == 0 {
		delete(m, k)
		return
	}
	m[k] = v
}

// pendingLocked reports whether the credential keyID of a is still unknown to the token
// service at now, forgetting it once it is known. The caller holds e.mu.
func (e *Emulator) pendingLocked(a *app, keyID string, now time.Time) bool {
	k := credKey(a.ObjectID, keyID)
	until, ok := e.signIn.pending[k]
	if !ok {
		return false
	}
	if now.Before(until) {
		return true
	}
	delete(e.signIn.pending, k)
	return false
}

// signInFromLocked returns when the credential keyID of a starts signing in, if it has not
// yet. The caller holds e.mu.
func (e *Emulator) signInFromLocked(a *app, keyID string) *time.Time {
	until, ok := e.signIn.pending[credKey(a.ObjectID, keyID)]
	if !ok || !e.cfg.now().Before(until) {
		return nil
	}
	u := until.UTC()
	return &u
}

// Settle ends every delay now: credentials added sign in, credentials removed stop signing
// in, every replica serves the latest version, pending stale reads are dropped. Queued
// faults stay.
func (e *Emulator) Settle() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.signIn = newSignInPropagation()
	e.replicas = map[string]*replicaHistory{}
	e.stale = map[string]*staleEntry{}
}
