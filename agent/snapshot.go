package agent

import (
	"context"
	"encoding/json"

	"github.com/aucloud/certagent/agent/rotation"
)

// snapshotKey is the store's meta key for the last read of the target app, so that status
// and certificates have an answer right after a restart, before the first read.
const snapshotKey = "target-app-snapshot"

// saveSnapshot keeps the engine's latest read of the target app in the store. Key bytes are
// dropped: the thumbprint is all status needs, and the engine re-reads before any write.
func (a *Agent) saveSnapshot(s rotation.Snapshot) {
	for i := range s.App.KeyCredentials {
		c := &s.App.KeyCredentials[i]
		if c.CustomKeyIdentifier == nil && len(c.Key) > 0 {
			c.CustomKeyIdentifier = []byte(c.Thumbprint())
		}
		c.Key = nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		a.log.Error("encoding app snapshot", "err", err)
		return
	}
	if err := a.store.PutMeta(context.Background(), snapshotKey, b); err != nil {
		a.log.Warn("saving app snapshot", "err", err)
	}
}

func (a *Agent) restoreSnapshot() {
	b, err := a.store.GetMeta(context.Background(), snapshotKey)
	if err != nil || len(b) == 0 {
		return
	}
	var s rotation.Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		a.log.Warn("ignoring unreadable app snapshot", "err", err)
		return
	}
	a.engine.Restore(s)
}
