package certs

import "strings"

// Directory objects `certagent setup` works with, as read from Graph.

// Owner types of DirectoryObject.
const (
	ObjectServicePrincipal = "servicePrincipal"
	ObjectUser             = "user"
)

// DirectoryObject is an owner of an application: a service principal or a user.
type DirectoryObject struct {
	// ID is the object's id.
	ID string
	// Type is ObjectServicePrincipal, ObjectUser, or another directory object type by name.
	Type        string
	DisplayName string
	// AppID is a service principal's application (client) id.
	AppID string
	// UserPrincipalName is a user's sign-in name.
	UserPrincipalName string
}

// String names the object for people: a user by sign-in name, a service principal by
// display name and app id.
func (o DirectoryObject) String() string {
	switch {
	case o.Type == ObjectUser && o.UserPrincipalName != "":
		return o.UserPrincipalName
	case o.Type == ObjectServicePrincipal:
		return o.DisplayName + " (app " + o.AppID + ")"
	case o.DisplayName != "":
		return o.DisplayName
	}
	return o.Type + " " + o.ID
}

// ServicePrincipal is an application's identity in a tenant (an "enterprise application").
type ServicePrincipal struct {
	ID          string
	AppID       string
	DisplayName string
	// AppRoles are the app roles the service principal defines, as a resource (Microsoft
	// Graph defines its application permissions so).
	AppRoles []AppRole
}

// AppRole is an app role a resource defines.
type AppRole struct {
	ID    string
	Value string
}

// AppRoleID returns the id of the app role whose value is value.
func (sp ServicePrincipal) AppRoleID(value string) (string, bool) {
	for _, r := range sp.AppRoles {
		if r.Value == value {
			return r.ID, true
		}
	}
	return "", false
}

// AppRoleAssignment grants the app role AppRoleID of the resource service principal
// ResourceID to the principal PrincipalID (for Graph's app roles: an application permission
// with admin consent).
type AppRoleAssignment struct {
	ID          string
	PrincipalID string
	ResourceID  string
	AppRoleID   string
}

// Grants reports whether the assignment is of appRoleID on resourceID.
func (a AppRoleAssignment) Grants(resourceID, appRoleID string) bool {
	return strings.EqualFold(a.ResourceID, resourceID) && strings.EqualFold(a.AppRoleID, appRoleID)
}
