package graph

import (
	"github.com/google/uuid"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// The Graph resources the client reads and writes, as small kiota Parsables of their own.
//
// msgraph-sdk-go's models for Graph entities (Application, ServicePrincipal, User,
// DirectoryObject, AppRoleAssignment...) are not used: any one of them reaches
// models.CreateEntityFromDiscriminatorValue, which names every entity type of Graph, and with
// it the whole models package (about 9 MB of code) ends up in the binary. The SDK's complex
// types that reach no entity (KeyCredential, AppRole, ReferenceCreate, the addKey and
// removeKey bodies) are still used, as are its request builders' To*RequestInformation
// methods, its request adapter and odataerrors. Each type here reads the properties the
// client uses (others are ignored) and writes them as the SDK's model would: @odata.type
// when the model's constructor sets it, properties that are nil left out.

// errorMapping is what every request builder of the SDK maps error answers with.
var errorMapping = abstractions.ErrorMappings{"XXX": odataerrors.CreateODataErrorFromDiscriminatorValue}

// Graph's @odata.type values of the resources the client writes.
const (
	odataApplication       = "#microsoft.graph.application"
	odataServicePrincipal  = "#microsoft.graph.servicePrincipal"
	odataUser              = "#microsoft.graph.user"
	odataAppRoleAssignment = "#microsoft.graph.appRoleAssignment"
)

// application is Graph's application resource: the properties the client reads, and the
// ones its PATCH and POST bodies set.
type application struct {
	odataType      *string
	id             *string
	appID          *string
	displayName    *string
	signInAudience *string
	// keyCredentials is written when it is not nil (an empty list is written as []).
	keyCredentials []models.KeyCredentialable
}

// newApplication is a body for a write, with @odata.type set as models.NewApplication does.
func newApplication() *application { return &application{odataType: ptr(odataApplication)} }

func createApplication(absser.ParseNode) (absser.Parsable, error) { return &application{}, nil }

func (m *application) GetFieldDeserializers() map[string]func(absser.ParseNode) error {
	return map[string]func(absser.ParseNode) error{
		"@odata.type":    stringField(&m.odataType),
		"id":             stringField(&m.id),
		"appId":          stringField(&m.appID),
		"displayName":    stringField(&m.displayName),
		"signInAudience": stringField(&m.signInAudience),
		"keyCredentials": func(n absser.ParseNode) error {
			list, err := n.GetCollectionOfObjectValues(models.CreateKeyCredentialFromDiscriminatorValue)
			if err != nil {
				return err
			}
			if list != nil {
				m.keyCredentials = make([]models.KeyCredentialable, len(list))
				for i, v := range list {
					if v != nil {
						m.keyCredentials[i] = v.(models.KeyCredentialable)
					}
				}
			}
			return nil
		},
	}
}

// Serialize writes the properties in the order models.Application does.
func (m *application) Serialize(w absser.SerializationWriter) error {
	if err := writeStrings(w, "id", m.id, "@odata.type", m.odataType, "appId", m.appID, "displayName", m.displayName); err != nil {
		return err
	}
	if m.keyCredentials != nil {
		list := make([]absser.Parsable, len(m.keyCredentials))
		for i, k := range m.keyCredentials {
			if k != nil {
				list[i] = k.(absser.Parsable)
			}
		}
		if err := w.WriteCollectionOfObjectValues("keyCredentials", list); err != nil {
			return err
		}
	}
	return w.WriteStringValue("signInAudience", m.signInAudience)
}

// servicePrincipal is Graph's servicePrincipal resource: the properties the client reads
// (with Microsoft Graph's app roles) and appId, which creates one.
type servicePrincipal struct {
	odataType   *string
	id          *string
	appID       *string
	displayName *string
	appRoles    []models.AppRoleable
}

func createServicePrincipal(absser.ParseNode) (absser.Parsable, error) {
	return &servicePrincipal{}, nil
}

func (m *servicePrincipal) GetFieldDeserializers() map[string]func(absser.ParseNode) error {
	return map[string]func(absser.ParseNode) error{
		"@odata.type": stringField(&m.odataType),
		"id":          stringField(&m.id),
		"appId":       stringField(&m.appID),
		"displayName": stringField(&m.displayName),
		"appRoles": func(n absser.ParseNode) error {
			list, err := n.GetCollectionOfObjectValues(models.CreateAppRoleFromDiscriminatorValue)
			if err != nil {
				return err
			}
			if list != nil {
				m.appRoles = make([]models.AppRoleable, len(list))
				for i, v := range list {
					if v != nil {
						m.appRoles[i] = v.(models.AppRoleable)
					}
				}
			}
			return nil
		},
	}
}

// Serialize writes the properties in the order models.ServicePrincipal does.
func (m *servicePrincipal) Serialize(w absser.SerializationWriter) error {
	if err := writeStrings(w, "id", m.id, "@odata.type", m.odataType, "appId", m.appID); err != nil {
		return err
	}
	if m.appRoles != nil {
		list := make([]absser.Parsable, len(m.appRoles))
		for i, r := range m.appRoles {
			if r != nil {
				list[i] = r.(absser.Parsable)
			}
		}
		if err := w.WriteCollectionOfObjectValues("appRoles", list); err != nil {
			return err
		}
	}
	return w.WriteStringValue("displayName", m.displayName)
}

// appRoleAssignment is Graph's appRoleAssignment resource.
type appRoleAssignment struct {
	odataType   *string
	id          *string
	appRoleID   *uuid.UUID
	principalID *uuid.UUID
	resourceID  *uuid.UUID
}

func createAppRoleAssignment(absser.ParseNode) (absser.Parsable, error) {
	return &appRoleAssignment{}, nil
}

func (m *appRoleAssignment) GetFieldDeserializers() map[string]func(absser.ParseNode) error {
	return map[string]func(absser.ParseNode) error{
		"@odata.type": stringField(&m.odataType),
		"id":          stringField(&m.id),
		"appRoleId":   uuidField(&m.appRoleID),
		"principalId": uuidField(&m.principalID),
		"resourceId":  uuidField(&m.resourceID),
	}
}

// Serialize writes the properties in the order models.AppRoleAssignment does.
func (m *appRoleAssignment) Serialize(w absser.SerializationWriter) error {
	if err := writeStrings(w, "id", m.id, "@odata.type", m.odataType); err != nil {
		return err
	}
	if err := w.WriteUUIDValue("appRoleId", m.appRoleID); err != nil {
		return err
	}
	if err := w.WriteUUIDValue("principalId", m.principalID); err != nil {
		return err
	}
	return w.WriteUUIDValue("resourceId", m.resourceID)
}

// directoryObject is an entry of an application's owners: a user, a service principal or
// another directory object, told apart by @odata.type.
type directoryObject struct {
	odataType         *string
	id                *string
	appID             *string
	displayName       *string
	userPrincipalName *string
}

func createDirectoryObject(absser.ParseNode) (absser.Parsable, error) {
	return &directoryObject{}, nil
}

func (m *directoryObject) GetFieldDeserializers() map[string]func(absser.ParseNode) error {
	return map[string]func(absser.ParseNode) error{
		"@odata.type":       stringField(&m.odataType),
		"id":                stringField(&m.id),
		"appId":             stringField(&m.appID),
		"displayName":       stringField(&m.displayName),
		"userPrincipalName": stringField(&m.userPrincipalName),
	}
}

func (m *directoryObject) Serialize(w absser.SerializationWriter) error {
	return writeStrings(w, "id", m.id, "@odata.type", m.odataType, "appId", m.appID,
		"displayName", m.displayName, "userPrincipalName", m.userPrincipalName)
}

// page is one page of a collection answer: {"value": [...], "@odata.nextLink": "..."}.
type page[T absser.Parsable] struct {
	create   absser.ParsableFactory
	value    []T
	nextLink *string
}

// pageOf is the factory of a page whose entries create makes.
func pageOf[T absser.Parsable](create absser.ParsableFactory) absser.ParsableFactory {
	return func(absser.ParseNode) (absser.Parsable, error) { return &page[T]{create: create}, nil }
}

func (m *page[T]) GetFieldDeserializers() map[string]func(absser.ParseNode) error {
	return map[string]func(absser.ParseNode) error{
		"@odata.nextLink": stringField(&m.nextLink),
		"value": func(n absser.ParseNode) error {
			list, err := n.GetCollectionOfObjectValues(m.create)
			if err != nil {
				return err
			}
			m.value = nil
			for _, v := range list {
				if t, ok := v.(T); ok {
					m.value = append(m.value, t)
				}
			}
			return nil
		},
	}
}

func (m *page[T]) Serialize(w absser.SerializationWriter) error {
	if err := w.WriteStringValue("@odata.nextLink", m.nextLink); err != nil {
		return err
	}
	list := make([]absser.Parsable, len(m.value))
	for i, v := range m.value {
		list[i] = v
	}
	return w.WriteCollectionOfObjectValues("value", list)
}

func stringField(p **string) func(absser.ParseNode) error {
	return func(n absser.ParseNode) error {
		v, err := n.GetStringValue()
		if err != nil {
			return err
		}
		*p = v
		return nil
	}
}

func uuidField(p **uuid.UUID) func(absser.ParseNode) error {
	return func(n absser.ParseNode) error {
		v, err := n.GetUUIDValue()
		if err != nil {
			return err
		}
		*p = v
		return nil
	}
}

// writeStrings writes name/value pairs of string properties, leaving nil ones out.
func writeStrings(w absser.SerializationWriter, kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if err := w.WriteStringValue(kv[i].(string), kv[i+1].(*string)); err != nil {
			return err
		}
	}
	return nil
}
