// Package pull fetches a target's next certificate from the provider by itself: the
// provider publishes this customer's next certificate at an HTTPS URL (config source.url)
// and its signature at the URL with ".sig" appended to the path, and the agent fetches both
// every source.interval and hands anything new to the same submission path as a dropped
// file (policy, provenance, rotation engine). With the provider's signed webhook, the yearly
// rotation then needs no person.
//
// # Fetching
//
// Each round GETs the certificate and the signature with If-None-Match (their last ETags),
// over TLS 1.2 or later trusting the system's roots or only the pinned CA (source.ca_file),
// following at most 5 redirects and only to https, each file cut at its size limit
// (certs.MaxFileSize, certs.MaxSignatureSize). A 404 for the signature is "no signature";
// for the certificate it is a failure. Content that equals the last round's (by SHA-256) is
// not submitted again, so a server without ETags costs a download and nothing else.
//
// # Schedule
//
// A round at start, then every interval ±10%; after a failure, 1 minute doubling up to the
// interval (±10%). Fetch asks for a round now (POST /api/v1/scan). Nothing that goes wrong
// (DNS, TLS, HTTP status, size, a refused certificate) stops the agent: each is a status
// problem (source_unreachable, source_refused) until a round succeeds.
//
// # State
//
// The ETags, the digest of the last content and what became of it are kept in the store's
// meta area (Config.Key), so a restart neither fetches nor audits again what it has seen.
package pull

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/api/apitype"
)

// Timing of the rounds.
const (
	// FirstRetry is the delay after a first failure; it doubles up to the interval.
	FirstRetry = time.Minute
	// Jitter is the fraction a delay is varied by, either way.
	Jitter = 0.1
	// Timeout bounds one request.
	Timeout = 30 * time.Second
	// maxRedirects bounds the redirects followed.
	maxRedirects = 5
)

// Outcome is what the submission path made of a fetched certificate.
type Outcome struct {
	// Reason refuses the certificate; nil when it was taken (a new rotation or an existing
	// one).
	Reason *certs.Reason
	// RotationID is the rotation it started or matched.
	RotationID string
	// Created is set for a new rotation.
	Created bool
}

// Meta is the part of the store the fetcher keeps its state in. GetMeta's error for a key
// never written (and any other) is taken as no state.
type Meta interface {
	GetMeta(ctx context.Context, key string) ([]byte, error)
	PutMeta(ctx context.Context, key string, value []byte) error
}

// Config configures a Fetcher. URL, Interval, Submit, Meta, Key and Logger are required.
type Config struct {
	// URL is source.url; the signature is fetched from it with ".sig" appended to its path.
	URL string
	// Interval is source.interval.
	Interval time.Duration
	// CAFile is source.ca_file: the only CA trusted for URL; "" trusts the system's.
	CAFile string
	// Submit hands a fetched certificate (its bytes, and its signature's, nil when none was
	// published) to the target's submission path; it audits what it decides. An error means
	// it could not decide (the store failed): the round is tried again.
	Submit func(ctx context.Context, cert, sig []byte, from string) (Outcome, error)
	// Meta and Key are where the state is kept.
	Meta Meta
	Key  string
	// UserAgent is sent with each request.
	UserAgent string
	Logger    *slog.Logger
	// Now is the clock (default time.Now); Rand the jitter's source in [0, 1) (default
	// math/rand/v2).
	Now  func() time.Time
	Rand func() float64
	// Transport, if set, replaces the HTTP transport (tests); TLS settings are then its own.
	Transport http.RoundTripper
}

// state is what the fetcher keeps in the store.
type state struct {
	URL        string        `json:"url"`
	CertETag   string        `json:"certETag,omitempty"`
	SigETag    string        `json:"sigETag,omitempty"`
	Digest     string        `json:"digest,omitempty"`
	Refused    *certs.Reason `json:"refused,omitempty"`
	RotationID string        `json:"rotationId,omitempty"`
	ChangedAt  time.Time     `json:"changedAt,omitzero"`
}

// Fetcher fetches one target's next certificate. Its methods are safe for concurrent use.
type Fetcher struct {
	cfg    Config
	log    *slog.Logger
	sigURL string
	poke   chan struct{}

	// mu guards the fields below.
	mu          sync.Mutex
	client      *http.Client
	st          state
	loaded      bool
	lastCheck   time.Time
	lastSuccess time.Time
	next        time.Time
	failures    int
	err         error // the last round's failure; nil after a success
}

// New checks cfg and returns a Fetcher; Run starts it.
func New(cfg Config) (*Fetcher, error) {
	switch {
	case cfg.URL == "" || cfg.Interval <= 0 || cfg.Submit == nil || cfg.Meta == nil || cfg.Key == "" || cfg.Logger == nil:
		return nil, errors.New("pull: Config.URL, Interval, Submit, Meta, Key and Logger are required")
	}
	sig, err := SignatureURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	return &Fetcher{cfg: cfg, log: cfg.Logger.With("component", "pull"), sigURL: sig, poke: make(chan struct{}, 1)}, nil
}

// SignatureURL returns where the signature of the certificate at u is published: u with
// ".sig" appended to its path (a query stays as it is).
func SignatureURL(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("source.url %q: %w", u, err)
	}
	p.Path += ".sig"
	if p.RawPath != "" {
		p.RawPath += ".sig"
	}
	return p.String(), nil
}

// URL returns the certificate's URL.
func (f *Fetcher) URL() string { return f.cfg.URL }

// Fetch asks for a round now, without waiting for it; requests while one is pending merge.
func (f *Fetcher) Fetch() {
	select {
	case f.poke <- struct{}{}:
	default:
	}
}

// Run fetches at start and then on schedule until ctx ends, and returns nil.
func (f *Fetcher) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-f.poke:
			timer.Stop()
		}
		err := f.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		f.mu.Lock()
		d := NextDelay(f.cfg.Interval, f.failures, f.cfg.Rand())
		f.next = f.cfg.Now().Add(d)
		f.mu.Unlock()
		if err != nil {
			f.log.Debug("next fetch of source.url", "url", f.cfg.URL, "in", d)
		}
		timer.Reset(d)
	}
}

// NextDelay returns the delay before the next round after failures failed rounds in a row
// (0 after a success): interval, or after a failure FirstRetry doubling up to interval,
// varied by ±Jitter with r, a number in [0, 1).
func NextDelay(interval time.Duration, failures int, r float64) time.Duration {
	d := interval
	if failures > 0 {
		d = FirstRetry
		for i := 1; i < failures && d < interval; i++ {
			d *= 2
		}
		d = min(d, interval)
	}
	return time.Duration(float64(d) * (1 - Jitter + 2*Jitter*r))
}

// Poll does one round: it fetches the certificate and its signature and submits what is new.
// It returns the round's failure (also kept for Problems); a refused certificate is not a
// failure of the round.
func (f *Fetcher) Poll(ctx context.Context) error {
	now := f.cfg.Now()
	err := f.poll(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastCheck = now
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		f.failures++
		if f.err == nil || f.err.Error() != err.Error() {
			f.log.Warn("fetching the next certificate failed", "url", f.cfg.URL, "err", err, "failures", f.failures)
		}
		f.err = err
		return err
	}
	if f.err != nil {
		f.log.Info("fetching the next certificate works again", "url", f.cfg.URL)
	}
	f.failures, f.err, f.lastSuccess = 0, nil, now
	return nil
}

func (f *Fetcher) poll(ctx context.Context) error {
	st, err := f.load(ctx)
	if err != nil {
		return err
	}
	cert, err := f.get(ctx, f.cfg.URL, st.CertETag, certs.MaxFileSize, "certificate")
	if err != nil {
		return err
	}
	sig, err := f.get(ctx, f.sigURL, st.SigETag, certs.MaxSignatureSize, "signature")
	if err != nil {
		return err
	}
	if cert.notModified && sig.notModified {
		return nil
	}
	// One of them changed: fetch the other in full.
	if cert.notModified {
		if cert, err = f.get(ctx, f.cfg.URL, "", certs.MaxFileSize, "certificate"); err != nil {
			return err
		}
	}
	if sig.notModified {
		if sig, err = f.get(ctx, f.sigURL, "", certs.MaxSignatureSize, "signature"); err != nil {
			return err
		}
	}
	if cert.missing {
		return fmt.Errorf("GET %s: 404 Not Found: the provider publishes no certificate there (source.url)", f.cfg.URL)
	}
	digest := digestOf(cert.body, sig.body, sig.missing)
	st.CertETag, st.SigETag = cert.etag, sig.etag
	if digest != st.Digest {
		var sigBody []byte
		if !sig.missing {
			sigBody = sig.body
		}
		out, err := f.cfg.Submit(ctx, cert.body, sigBody, f.cfg.URL)
		if err != nil {
			return fmt.Errorf("recording the certificate fetched from %s: %w", f.cfg.URL, err)
		}
		st.Digest, st.Refused, st.RotationID, st.ChangedAt = digest, out.Reason, out.RotationID, f.cfg.Now().UTC()
		if out.Reason != nil {
			f.log.Warn("the certificate fetched from source.url was refused", "url", f.cfg.URL, "code", out.Reason.Code, "reason", out.Reason.Message)
		} else {
			f.log.Info("fetched the next certificate", "url", f.cfg.URL, "rotation_id", out.RotationID, "new", out.Created)
		}
	}
	return f.save(ctx, st)
}

// digestOf identifies a round's content: the certificate and the signature (or its absence).
func digestOf(cert, sig []byte, noSig bool) string {
	h := sha256.New()
	h.Write([]byte(fmt.Sprintf("%d:", len(cert))))
	h.Write(cert)
	if !noSig {
		h.Write([]byte(fmt.Sprintf("%d:", len(sig))))
		h.Write(sig)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fetched is one GET's answer.
type fetched struct {
	body        []byte
	etag        string
	notModified bool
	missing     bool // 404
}

// get fetches u with If-None-Match etag ("" for none), reading at most limit bytes. A 404 is
// an answer (missing), not an error.
func (f *Fetcher) get(ctx context.Context, u, etag string, limit int, what string) (fetched, error) {
	c, err := f.httpClient()
	if err != nil {
		return fetched{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fetched{}, fmt.Errorf("fetching the %s: %w", what, err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if f.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", f.cfg.UserAgent)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fetched{}, fmt.Errorf("fetching the %s: %w", what, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		return fetched{notModified: true, etag: etag}, nil
	case resp.StatusCode == http.StatusNotFound:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fetched{missing: true}, nil
	case resp.StatusCode != http.StatusOK:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fetched{}, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if resp.ContentLength > int64(limit) {
		return fetched{}, fmt.Errorf("GET %s: the %s is %d bytes, over the limit of %d", u, what, resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return fetched{}, fmt.Errorf("GET %s: reading the %s: %w", u, what, err)
	}
	if len(body) > limit {
		return fetched{}, fmt.Errorf("GET %s: the %s is over the limit of %d bytes", u, what, limit)
	}
	return fetched{body: body, etag: resp.Header.Get("ETag")}, nil
}

// httpClient returns the client, made at the first round: a missing or unreadable pinned CA
// is then a failure of the round (a status problem), not of the agent's start.
func (f *Fetcher) httpClient() (*http.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.client != nil {
		return f.client, nil
	}
	rt := f.cfg.Transport
	if rt == nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if f.cfg.CAFile != "" {
			b, err := os.ReadFile(f.cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading source.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("source.ca_file %s holds no PEM certificate", f.cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc
		rt = t
	}
	f.client = &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			switch {
			case len(via) >= maxRedirects:
				return fmt.Errorf("more than %d redirects", maxRedirects)
			case req.URL.Scheme != "https":
				return fmt.Errorf("redirected to %s, which is not https", req.URL.Redacted())
			}
			return nil
		},
	}
	return f.client, nil
}

func (f *Fetcher) load(ctx context.Context) (state, error) {
	f.mu.Lock()
	if f.loaded {
		st := f.st
		f.mu.Unlock()
		return st, nil
	}
	f.mu.Unlock()
	// No state (a first start) is an error of the store's own kind; any error is taken as
	// no state: at worst the content is submitted again, which the engine takes as a
	// duplicate.
	b, err := f.cfg.Meta.GetMeta(ctx, f.cfg.Key)
	var st state
	if err == nil && len(b) > 0 {
		if err := json.Unmarshal(b, &st); err != nil {
			f.log.Warn("ignoring an unreadable fetch state", "key", f.cfg.Key, "err", err)
			st = state{}
		}
	}
	if st.URL != f.cfg.URL {
		st = state{URL: f.cfg.URL} // another URL: nothing of the old one applies
	}
	f.mu.Lock()
	f.st, f.loaded = st, true
	f.mu.Unlock()
	return st, nil
}

func (f *Fetcher) save(ctx context.Context, st state) error {
	f.mu.Lock()
	same := bytes.Equal(mustJSON(f.st), mustJSON(st))
	f.st = st
	f.mu.Unlock()
	if same {
		return nil
	}
	if err := f.cfg.Meta.PutMeta(ctx, f.cfg.Key, mustJSON(st)); err != nil {
		return fmt.Errorf("saving the fetch state: %w", err)
	}
	return nil
}

func mustJSON(st state) []byte {
	b, _ := json.Marshal(st)
	return b
}

// Status is what the status shows of the fetcher.
func (f *Fetcher) Status() apitype.SourceStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := apitype.SourceStatus{URL: f.cfg.URL, IntervalSeconds: int64(f.cfg.Interval / time.Second), RotationID: f.st.RotationID, Refused: f.st.Refused}
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		u := t.UTC()
		return &u
	}
	s.LastCheck, s.LastSuccess, s.LastChange, s.NextCheck = at(f.lastCheck), at(f.lastSuccess), at(f.st.ChangedAt), at(f.next)
	if f.err != nil {
		s.Error = f.err.Error()
	}
	return s
}

// Problems returns what needs a person: a failing fetch (source_unreachable), a refused
// certificate (source_refused; critical when its signature was refused).
func (f *Fetcher) Problems(target string) []health.Problem {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ps []health.Problem
	if f.err != nil {
		ps = append(ps, health.Problem{Code: health.SourceUnreachable, Severity: health.Warning, Message: fmt.Sprintf(
			"fetching target %s's next certificate from %s failed %d time(s) in a row, the last at %s: %v; the agent keeps trying (next at %s); check the URL, the network, the proxy and source.ca_file",
			target, f.cfg.URL, f.failures, f.lastCheck.UTC().Format(time.RFC3339), f.err, f.next.UTC().Format(time.RFC3339))})
	}
	if r := f.st.Refused; r != nil {
		sev := health.Warning
		for _, c := range certs.ProvenanceCodes {
			if r.Code == c {
				sev = health.Critical
			}
		}
		ps = append(ps, health.Problem{Code: health.SourceRefused, Severity: sev, Message: fmt.Sprintf(
			"the certificate published for target %s at %s was refused (%s): %s; nothing was uploaded; ask the provider, who publishes there, to check it (the agent fetches again every %s and takes a corrected one)",
			target, f.cfg.URL, r.Code, r.Message, human(f.cfg.Interval))})
	}
	return ps
}

// human writes a duration the way the config does: "24h", "90m", "45s".
func human(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
