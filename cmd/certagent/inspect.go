package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/provenance"
	"github.com/aucloud/certagent/agent/target"
	"github.com/aucloud/certagent/agent/userfile"
)

// inspectResult is one line of `inspect --json` (docs/contract.md, "Command line").
type inspectResult struct {
	File        string             `json:"file"`
	Verdict     string             `json:"verdict"`
	Reason      *certs.Reason      `json:"reason,omitempty"`
	Certificate *certs.Certificate `json:"certificate,omitempty"`
	// Signature is the signature file checked with the certificate; SignedBy and Signer the
	// pinned key that made it (its fingerprint; its name, algorithm and fingerprint).
	Signature string `json:"signature,omitempty"`
	SignedBy  string `json:"signedBy,omitempty"`
	Signer    string `json:"signer,omitempty"`
}

func runInspect(_ context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "inspect", "inspect FILE... [-c FILE [--target NAME]] [--signature FILE.sig] [--json]")
	configFile := fs.String("c", "", "config file whose policy and provenance to apply (default: the built-in default policy, no provenance keys)")
	targetName := fs.String("target", "", "with -c and several targets: the target whose policy and provenance apply (default: the first)")
	sigFile := fs.String("signature", "", "the certificate's detached signature (default: FILE.sig when it exists, as the drop folder pairs them)")
	asJSON := fs.Bool("json", false, "print one JSON object per file, one per line")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return usagef("inspect needs at least one file")
	}
	if *sigFile != "" && len(files) > 1 {
		return usagef("--signature goes with one certificate file; for several, put each one's signature beside it as FILE.sig")
	}
	policy := certpolicy.Default()
	var verifier *provenance.Verifier
	if *configFile != "" {
		cfg, err := loadConfig(*configFile)
		if err != nil {
			return err
		}
		if _, err := policyOf(cfg); err != nil {
			return err
		}
		tc, err := pickTarget(cfg, *targetName)
		if err != nil {
			return err
		}
		policy = tc.Policy
		if verifier, err = agent.VerifierFrom(tc.Provenance); err != nil {
			return fmt.Errorf("%w; fix provenance.keys in %s", err, cfg.File)
		}
	} else if *targetName != "" {
		return usagef("--target needs -c FILE")
	}
	if *sigFile != "" && len(verifier.Keys()) == 0 {
		return usagef("--signature needs -c FILE with provenance.keys: the provider's public keys to check it with")
	}
	now := time.Now()
	rejected := 0
	for _, f := range files {
		sig := *sigFile
		if sig == "" {
			if _, err := os.Lstat(f + certpolicy.SignatureSuffix); err == nil {
				sig = f + certpolicy.SignatureSuffix
			}
		}
		res, err := inspectFile(policy, verifier, f, sig, now)
		if err != nil {
			return err
		}
		if res.Verdict != "accepted" {
			rejected++
		}
		if *asJSON {
			b, err := json.Marshal(res)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "%s\n", b)
			continue
		}
		printInspect(env.stdout, res, now)
	}
	if rejected > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// pickTarget returns the target of cfg named name, or the first for "".
func pickTarget(cfg *config.Config, name string) (config.TargetConfig, error) {
	tcs := cfg.EffectiveTargets()
	if name == "" {
		return tcs[0], nil
	}
	var names []string
	for _, tc := range tcs {
		if tc.Name == name {
			return tc, nil
		}
		names = append(names, tc.Name)
	}
	return config.TargetConfig{}, usagef("no target is named %q in %s; the targets are %s", name, cfg.File, strings.Join(names, ", "))
}

// inspectFile gives the verdict the drop folder gives file with its signature file sig (""
// for none): the policy's on the file (its name, type and size first), then, as the agent
// does, the provenance check of the signature over the file's exact bytes.
func inspectFile(policy certpolicy.Policy, verifier *provenance.Verifier, file, sig string, now time.Time) (inspectResult, error) {
	v := policy.ReadFile(file, now)
	res := inspectResult{File: file, Signature: sig}
	// Refused by its name, its type or its size, or unreadable: the drop folder refuses it
	// before it reads it, signature or not.
	byFile := v.Err != nil || !v.Accepted && v.Certificate == nil && (v.Reason.Code == certs.UnsupportedFile || v.Reason.Code == certs.ContainsPrivateKey || v.Reason.Code == certs.TooLarge)
	if !byFile {
		data, err := readLimited(file, certs.MaxFileSize)
		if err != nil {
			return res, err
		}
		var sigData []byte
		if sig != "" {
			if sigData, err = readLimited(sig, certs.MaxSignatureSize); errors.Is(err, userfile.ErrTooLarge) {
				v.Accepted, v.Reason = false, &certs.Reason{Code: certs.SignatureInvalid, Message: fmt.Sprintf("its signature file %s is larger than %d KiB, which no signature is", sig, certs.MaxSignatureSize>>10)}
				sigData = nil
			} else if err != nil {
				return res, err
			}
		}
		if v.Reason == nil || v.Reason.Code != certs.SignatureInvalid {
			pr := verifier.Check(sigData, data)
			v = target.Judge(v, pr)
			if v.Accepted && pr.Signer != nil {
				res.SignedBy, res.Signer = pr.Signer.Fingerprint, pr.Signer.String()
			}
		}
		clear(data)
	}
	res.Verdict, res.Certificate = "accepted", v.Certificate
	if !v.Accepted {
		res.Verdict, res.Reason = "rejected", v.Reason
	}
	return res, nil
}

// readLimited reads a regular file of at most limit bytes without following links
// (userfile.ErrTooLarge beyond).
func readLimited(path string, limit int) ([]byte, error) {
	f, err := userfile.OpenNoFollow(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	b, err := userfile.ReadLimited(f, nil, limit)
	if err != nil && !errors.Is(err, userfile.ErrTooLarge) {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, err
}

func printInspect(w io.Writer, r inspectResult, now time.Time) {
	if r.Reason != nil {
		fmt.Fprintf(w, "%s: rejected (%s): %s\n", r.File, r.Reason.Code, r.Reason.Message)
	} else {
		fmt.Fprintf(w, "%s: accepted\n", r.File)
	}
	if c := r.Certificate; c != nil {
		fmt.Fprintf(w, "  subject     %s\n", c.Subject)
		fmt.Fprintf(w, "  issuer      %s\n", c.Issuer)
		fmt.Fprintf(w, "  thumbprint  %s\n", c.Thumbprint)
		fmt.Fprintf(w, "  sha256      %s\n", c.SHA256)
		fmt.Fprintf(w, "  serial      %s\n", c.SerialNumber)
		fmt.Fprintf(w, "  valid       %s to %s (%d days left)\n", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), c.DaysLeft(now))
		fmt.Fprintf(w, "  key         %s %d bits\n", c.KeyAlgorithm, c.KeyBits)
	}
	if r.Signature != "" {
		fmt.Fprintf(w, "  signature   %s\n", r.Signature)
	}
	if r.Signer != "" {
		fmt.Fprintf(w, "  signed by   %s\n", r.Signer)
	}
}
