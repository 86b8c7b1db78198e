package store

import (
	"strings"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// RecoverRotations rebuilds the rotations that audit entries describe, for `certagent store
// rebuild`, oldest first. It reads what the engine and the target record:
//
//   - rotation.state entries: the rotation's id, each state it entered with when, who and
//     why (its history), its certificate's facts, its keyId once applied, the reason of a
//     failed or rejected one; the first one also the submitted file's name and, by its actor
//     (intake or not), whether it came from the drop folder or the API;
//   - graph.write entries: the keyId a write used (the rotation's intent, so that the engine
//     recognises its own write on the app after a restart);
//   - intake.filed entries: the name the file got in processed/ ("moved to processed/...").
//
// What no entry records is left zero: the certificate's DER (the caller takes it from
// processed/ or from the app), the target's object id and display name, the attempt count.
// A rotation's app is the one its first entry names; entries written before they named one
// give it appID, the app of the agent's one target then.
func RecoverRotations(entries []ChainedEntry, appID string) []rotation.Rotation {
	byID := map[string]*rotation.Rotation{}
	var order []string
	for _, ce := range entries {
		e := ce.AuditEntry
		if e.RotationID == "" {
			continue
		}
		r := byID[e.RotationID]
		switch e.Action {
		case rotation.ActionRotationState:
			if r == nil {
				if e.Cert == nil {
					continue
				}
				r = &rotation.Rotation{
					ID: e.RotationID, Certificate: *e.Cert, CreatedAt: e.At,
					Source: rotation.Source{Kind: rotation.SourceAPI, FileName: e.File},
					Target: rotation.Target{AppID: appID},
				}
				if e.AppID != "" {
					r.Target.AppID = e.AppID
				}
				switch e.Actor {
				case rotation.ActorIntake:
					r.Source.Kind = rotation.SourceDropFolder
				case rotation.ActorPull:
					r.Source.Kind = rotation.SourcePull
					if u, ok := strings.CutPrefix(e.Message, "fetched from "); ok {
						r.Source.URL, _, _ = strings.Cut(u, ";")
					}
				}
				// The engine's note names the key that signed: "...; signed by pinned key
				// provider.pub (ECDSA P-256, SHA256:<hex>)".
				if _, key, ok := strings.Cut(e.Message, "; signed by pinned key "); ok {
					if i := strings.LastIndex(key, "SHA256:"); i >= 0 {
						r.Source.SignedBy = strings.TrimSuffix(key[i:], ")")
					}
				}
				byID[e.RotationID] = r
				order = append(order, e.RotationID)
			}
			r.State, r.UpdatedAt = e.State, e.At
			r.History = append(r.History, rotation.Event{At: e.At, State: e.State, Actor: e.Actor, Note: e.Message})
			if e.KeyID != "" {
				r.KeyID = e.KeyID
			}
			r.Reason = nil
			if (e.State == rotation.StateFailed || e.State == rotation.StateRejected) && e.Code != "" {
				r.Reason = &certs.Reason{Code: e.Code, Message: e.Message}
			}
			if e.State == rotation.StateApplied {
				// The engine's note when it found the certificate on the app and wrote nothing.
				r.AlreadyPresent = strings.HasPrefix(e.Message, "already on the app")
			}
		case rotation.ActionGraphWrite:
			if r != nil && e.KeyID != "" {
				r.IntentKeyID = e.KeyID
			}
		case rotation.ActionIntakeFiled:
			if name, ok := strings.CutPrefix(e.Message, "moved to processed/"); ok && r != nil && e.Outcome == rotation.OutcomeOK {
				// The target's note of a signature file filed beside the certificate
				// (target.SignatureNote, not imported: the store does not import the target).
				if i := strings.LastIndex(name, "; with signature file "); i >= 0 {
					name = name[:i]
				}
				r.Source.ArchivedAs = name
			}
		}
	}
	out := make([]rotation.Rotation, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}
