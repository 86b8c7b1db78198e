package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// Defaults of the settings.
const (
	// DefaultObjectSizeLimit is how large an application's credentials may grow, in bytes of
	// their JSON with keys (Settings.ObjectSizeLimit): about 800 minimal self-signed
	// certificates with 2048-bit RSA keys, 400 to 500 of the larger ones CAs issue. Entra
	// publishes no byte figure; users report Directory_ResourceSizeExceeded past about 600
	// key credentials (microsoftgraph/microsoft-graph-docs#21469), and Microsoft documents
	// "about 1,000 items across all the collection properties on the app object".
	DefaultObjectSizeLimit = 1 << 20
	// DefaultReplicas is how many directory replicas serve reads when replication lag is on
	// and Settings.Replicas is 0.
	DefaultReplicas = 3
	// Validity error codes the token endpoint can answer for a registered certificate outside
	// its validity window (Settings.ValidityErrorCode).
	ValidityError700027  = 700027  // "The key used is expired." (documented, long seen)
	ValidityError1000502 = 1000502 // certificate outside its validity window (unconfirmed wording)
	ValidityError7000274 = 7000274 // certificate not within its validity period (unconfirmed wording)
	// Codes the token endpoint can answer when a multitenant application signs in to a
	// tenant where it has no service principal, not consented there
	// (Settings.UnconsentedErrorCode).
	UnconsentedError7000229 = 7000229 // "is missing service principal in the tenant" (Microsoft's documentation, 2025)
	UnconsentedError700016  = 700016  // "was not found in the directory" (what Entra answered before, reported)
)

// sizeExceededMessage is Graph's message for Directory_ResourceSizeExceeded.
const sizeExceededMessage = "The size of the object has exceeded its limit. Please reduce the number of values and retry your request."

// Settings say how slow, inconsistent and strict the emulated services are. New takes them
// from its options; they can be read and changed while the emulator runs (Emulator.Settings,
// Emulator.SetSettings, GET and PUT /_emulator/settings). The zero value of each delay turns
// that behaviour off: the default is the fast, strict, consistent emulator the unit tests
// use.
type Settings struct {
	// SignInAddDelay is how long after a key credential (or secret) is added to an application
	// the token endpoint keeps refusing it as Entra refuses a key it does not know
	// (AADSTS700027 "not registered", AADSTS7000215 for a secret); SignInAddJitter adds a
	// random share of itself to each key's delay.
	SignInAddDelay  time.Duration
	SignInAddJitter time.Duration
	// SignInRemoveDelay is how long a removed credential keeps signing in;
	// SignInRemoveJitter adds a random share of itself to each.
	SignInRemoveDelay  time.Duration
	SignInRemoveJitter time.Duration
	// Replicas and MaxReplicationLag model Graph's read replicas: each write reaches each
	// replica after its own random lag in [0, MaxReplicationLag], and each request reads from
	// a replica picked at random, so reads after a write can go new, old, new. Writes always
	// apply to the primary. Off when MaxReplicationLag is 0; Replicas 0 means
	// DefaultReplicas.
	Replicas          int
	MaxReplicationLag time.Duration
	// StaleReads makes the next StaleReads reads of an application after each write return
	// the version before that write (deterministic; see also the "stale" fault).
	StaleReads int
	// Seed seeds the random choices (jitter, lags, replicas). The same seed and the same
	// sequence of requests give the same choices.
	Seed int64
	// ObjectSizeLimit is the largest an application's credentials may grow, in bytes of their
	// JSON with keys; beyond it writes answer Directory_ResourceSizeExceeded.
	ObjectSizeLimit int
	// SizeLimitStatus is the HTTP status of Directory_ResourceSizeExceeded: 400 (default) or
	// 403, which Azure AD Graph documented for the same code.
	SizeLimitStatus int
	// ValidityErrorCode is the AADSTS code for a registered certificate outside its validity
	// window: ValidityError700027 (default), ValidityError1000502 or ValidityError7000274.
	ValidityErrorCode int
	// UnconsentedErrorCode is the AADSTS code for a multitenant application signing in to a
	// tenant that holds no service principal of it: UnconsentedError7000229 (default; 0
	// means it) or UnconsentedError700016.
	UnconsentedErrorCode int
}

// unconsentedErrorCode returns UnconsentedErrorCode, its zero value read as the default.
func (s Settings) unconsentedErrorCode() int {
	if s.UnconsentedErrorCode == 0 {
		return UnconsentedError7000229
	}
	return s.UnconsentedErrorCode
}

// defaultSettings is the fast strict mode.
func defaultSettings() Settings {
	return Settings{
		ObjectSizeLimit:      DefaultObjectSizeLimit,
		SizeLimitStatus:      http.StatusBadRequest,
		ValidityErrorCode:    ValidityError700027,
		UnconsentedErrorCode: UnconsentedError7000229,
	}
}

// RealisticSettings are the settings WithRealistic applies: a new key signs in 5 to 20
// seconds after it was added, a removed one keeps signing in for 5 to 30 seconds, and reads
// come from three replicas, each up to 2 seconds behind.
func RealisticSettings(seed int64) Settings {
	s := defaultSettings()
	s.SignInAddDelay, s.SignInAddJitter = 5*time.Second, 15*time.Second
	s.SignInRemoveDelay, s.SignInRemoveJitter = 5*time.Second, 25*time.Second
	s.Replicas, s.MaxReplicationLag = DefaultReplicas, 2*time.Second
	s.Seed = seed
	return s
}

// Realistic reports whether any delay or lag is on.
func (s Settings) Realistic() bool {
	return s.SignInAddDelay > 0 || s.SignInAddJitter > 0 || s.SignInRemoveDelay > 0 ||
		s.SignInRemoveJitter > 0 || s.MaxReplicationLag > 0
}

// String describes the delays for a banner.
func (s Settings) String() string {
	if !s.Realistic() {
		return "no sign-in propagation delay, no replication lag"
	}
	return fmt.Sprintf("sign-in propagation %s-%s after an add, %s-%s after a remove; replication lag up to %s over %d replicas; seed %d",
		s.SignInAddDelay, s.SignInAddDelay+s.SignInAddJitter, s.SignInRemoveDelay, s.SignInRemoveDelay+s.SignInRemoveJitter,
		s.MaxReplicationLag, s.replicas(), s.Seed)
}

func (s Settings) replicas() int {
	if s.Replicas == 0 {
		return DefaultReplicas
	}
	return s.Replicas
}

// lagOn reports whether replication lag is modelled.
func (s Settings) lagOn() bool { return s.MaxReplicationLag > 0 }

const maxSettingDelay = time.Hour

// Validate checks the settings.
func (s Settings) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"signInAddDelay", s.SignInAddDelay}, {"signInAddJitter", s.SignInAddJitter},
		{"signInRemoveDelay", s.SignInRemoveDelay}, {"signInRemoveJitter", s.SignInRemoveJitter},
		{"maxReplicationLag", s.MaxReplicationLag},
	} {
		if d.v < 0 || d.v > maxSettingDelay {
			return fmt.Errorf("%s: %s is out of range (0 to %s)", d.name, d.v, maxSettingDelay)
		}
	}
	switch {
	case s.Replicas < 0 || s.Replicas > 16:
		return fmt.Errorf("replicas: %d is out of range (0 to 16)", s.Replicas)
	case s.StaleReads < 0:
		return fmt.Errorf("staleReads: %d must not be negative", s.StaleReads)
	case s.ObjectSizeLimit <= 0:
		return fmt.Errorf("objectSizeLimit: %d must be positive", s.ObjectSizeLimit)
	case s.SizeLimitStatus != http.StatusBadRequest && s.SizeLimitStatus != http.StatusForbidden:
		return fmt.Errorf("sizeLimitStatus: %d is not 400 or 403", s.SizeLimitStatus)
	case s.ValidityErrorCode != ValidityError700027 && s.ValidityErrorCode != ValidityError1000502 && s.ValidityErrorCode != ValidityError7000274:
		return fmt.Errorf("validityErrorCode: %d is not %d, %d or %d", s.ValidityErrorCode, ValidityError700027, ValidityError1000502, ValidityError7000274)
	case s.UnconsentedErrorCode != 0 && s.UnconsentedErrorCode != UnconsentedError7000229 && s.UnconsentedErrorCode != UnconsentedError700016:
		return fmt.Errorf("unconsentedErrorCode: %d is not %d or %d", s.UnconsentedErrorCode, UnconsentedError7000229, UnconsentedError700016)
	}
	return nil
}

// settingsJSON is Settings on the wire: durations as Go duration strings ("5s", "1m30s").
type settingsJSON struct {
	SignInAddDelay       string `json:"signInAddDelay"`
	SignInAddJitter      string `json:"signInAddJitter"`
	SignInRemoveDelay    string `json:"signInRemoveDelay"`
	SignInRemoveJitter   string `json:"signInRemoveJitter"`
	Replicas             int    `json:"replicas"`
	MaxReplicationLag    string `json:"maxReplicationLag"`
	StaleReads           int    `json:"staleReads"`
	Seed                 int64  `json:"seed"`
	ObjectSizeLimit      int    `json:"objectSizeLimit"`
	SizeLimitStatus      int    `json:"sizeLimitStatus"`
	ValidityErrorCode    int    `json:"validityErrorCode"`
	UnconsentedErrorCode int    `json:"unconsentedErrorCode"`
}

// MarshalJSON writes durations as strings ("5s").
func (s Settings) MarshalJSON() ([]byte, error) {
	return json.Marshal(settingsJSON{
		SignInAddDelay: s.SignInAddDelay.String(), SignInAddJitter: s.SignInAddJitter.String(),
		SignInRemoveDelay: s.SignInRemoveDelay.String(), SignInRemoveJitter: s.SignInRemoveJitter.String(),
		Replicas: s.Replicas, MaxReplicationLag: s.MaxReplicationLag.String(), StaleReads: s.StaleReads,
		Seed: s.Seed, ObjectSizeLimit: s.ObjectSizeLimit, SizeLimitStatus: s.SizeLimitStatus,
		ValidityErrorCode: s.ValidityErrorCode, UnconsentedErrorCode: s.unconsentedErrorCode(),
	})
}

// UnmarshalJSON reads settings onto s: fields left out keep their value, unknown fields are
// errors, durations are strings ("5s", "1m30s", "0s").
func (s *Settings) UnmarshalJSON(b []byte) error {
	cur, err := s.MarshalJSON()
	if err != nil {
		return err
	}
	var v settingsJSON
	if err := json.Unmarshal(cur, &v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	out := Settings{Replicas: v.Replicas, StaleReads: v.StaleReads, Seed: v.Seed, ObjectSizeLimit: v.ObjectSizeLimit,
		SizeLimitStatus: v.SizeLimitStatus, ValidityErrorCode: v.ValidityErrorCode, UnconsentedErrorCode: v.UnconsentedErrorCode}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"signInAddDelay", v.SignInAddDelay, &out.SignInAddDelay}, {"signInAddJitter", v.SignInAddJitter, &out.SignInAddJitter},
		{"signInRemoveDelay", v.SignInRemoveDelay, &out.SignInRemoveDelay}, {"signInRemoveJitter", v.SignInRemoveJitter, &out.SignInRemoveJitter},
		{"maxReplicationLag", v.MaxReplicationLag, &out.MaxReplicationLag},
	} {
		x, err := time.ParseDuration(d.in)
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration such as \"5s\"", d.name, d.in)
		}
		*d.out = x
	}
	*s = out
	return nil
}

// Settings returns the current settings.
func (e *Emulator) Settings() Settings {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.settings
}

// SetSettings replaces the settings and restarts the random sequence from s.Seed. Delays
// already decided (keys waiting to sign in, writes on their way to replicas) keep theirs;
// turning replication lag off makes every replica current at once.
func (e *Emulator) SetSettings(s Settings) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("setting emulator settings: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settings = s
	e.rng = newRand(s.Seed)
	if !s.lagOn() {
		e.replicas = map[string]*replicaHistory{}
	}
	return nil
}

func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
}

// jitterLocked returns a random duration in [0, max]. The caller holds e.mu.
func (e *Emulator) jitterLocked(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(e.rng.Int64N(int64(max) + 1))
}
