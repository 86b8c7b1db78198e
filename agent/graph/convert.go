package graph

import (
	"time"

	"github.com/google/uuid"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/aucloud/certagent/agent/certs"
)

// fromModel converts Graph's application to the domain type, keeping every credential in
// Graph's order.
func fromModel(m *application) certs.Application {
	app := certs.Application{
		ObjectID:    deref(m.id),
		AppID:       deref(m.appID),
		DisplayName: deref(m.displayName),
	}
	for _, k := range m.keyCredentials {
		if k != nil {
			app.KeyCredentials = append(app.KeyCredentials, keyFromModel(k))
		}
	}
	return app
}

// keyFromModel converts one key credential; dates are in UTC.
func keyFromModel(k models.KeyCredentialable) certs.KeyCredential {
	kc := certs.KeyCredential{
		Type:                deref(k.GetTypeEscaped()),
		Usage:               deref(k.GetUsage()),
		Key:                 k.GetKey(),
		DisplayName:         deref(k.GetDisplayName()),
		CustomKeyIdentifier: k.GetCustomKeyIdentifier(),
	}
	if id := k.GetKeyId(); id != nil {
		kc.KeyID = id.String()
	}
	if t := k.GetStartDateTime(); t != nil {
		kc.StartDateTime = t.UTC()
	}
	if t := k.GetEndDateTime(); t != nil {
		kc.EndDateTime = t.UTC()
	}
	return kc
}

// toModel converts one credential for a PATCH body. Empty fields are left out (Graph keeps
// the stored value for a known keyId), except key, which is sent as null when absent, as
// azure-cli does. k.KeyID must be a GUID.
func toModel(k certs.KeyCredential) models.KeyCredentialable {
	m := models.NewKeyCredential()
	id := uuid.MustParse(k.KeyID)
	m.SetKeyId(&id)
	if k.Type != "" {
		m.SetTypeEscaped(ptr(k.Type))
	}
	if k.Usage != "" {
		m.SetUsage(ptr(k.Usage))
	}
	if k.DisplayName != "" {
		m.SetDisplayName(ptr(k.DisplayName))
	}
	if k.CustomKeyIdentifier != nil {
		m.SetCustomKeyIdentifier(k.CustomKeyIdentifier)
	}
	extra := m.GetAdditionalData()
	if k.Key != nil {
		m.SetKey(k.Key)
	} else {
		// kiota leaves a nil byte array out; a nil additional value is written as null.
		extra["key"] = nil
	}
	// kiota writes time values with whole seconds (time.RFC3339). Graph refuses a changed
	// property on an existing keyId, so dates go out as strings with the precision they
	// were read with.
	if !k.StartDateTime.IsZero() {
		extra["startDateTime"] = formatTime(k.StartDateTime)
	}
	if !k.EndDateTime.IsZero() {
		extra["endDateTime"] = formatTime(k.EndDateTime)
	}
	return m
}

// formatTime writes t in UTC as RFC 3339 with as many fractional digits as it has.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}
