package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Microsoft Entra built-in roles a seeded user may hold (by display name), and what the
// emulator lets each do (docs/graph.md, "Delegated calls").
const (
	DirectoryRoleGlobalAdmin           = "Global Administrator"
	DirectoryRolePrivilegedRoleAdmin   = "Privileged Role Administrator"
	DirectoryRoleApplicationAdmin      = "Application Administrator"
	DirectoryRoleCloudApplicationAdmin = "Cloud Application Administrator"
	DirectoryRoleApplicationDeveloper  = "Application Developer"
	directoryRoleTemplateGlobalAdmin   = "62e90394-69f5-4237-9190-012177145e10"
	directoryRoleTemplatePrivRoleAdmin = "e8611ab8-c189-46e8-94e1-60213ab1f814"
	directoryRoleTemplateAppAdmin      = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
	directoryRoleTemplateCloudAppAdmin = "158c047a-c907-4556-b7ef-446551a6b5f7"
	directoryRoleTemplateAppDeveloper  = "cf1c38e5-3621-4004-a7cb-879624dced7c"
)

// knownDirectoryRoles lists the directory roles a seed may give a user.
var knownDirectoryRoles = []string{
	DirectoryRoleGlobalAdmin, DirectoryRolePrivilegedRoleAdmin, DirectoryRoleApplicationAdmin,
	DirectoryRoleCloudApplicationAdmin, DirectoryRoleApplicationDeveloper,
}

// directoryRoleTemplateIDs are the roles' template ids, which user tokens carry in "wids".
var directoryRoleTemplateIDs = map[string]string{
	DirectoryRoleGlobalAdmin:           directoryRoleTemplateGlobalAdmin,
	DirectoryRolePrivilegedRoleAdmin:   directoryRoleTemplatePrivRoleAdmin,
	DirectoryRoleApplicationAdmin:      directoryRoleTemplateAppAdmin,
	DirectoryRoleCloudApplicationAdmin: directoryRoleTemplateCloudAppAdmin,
	DirectoryRoleApplicationDeveloper:  directoryRoleTemplateAppDeveloper,
}

// Roles that manage any application (PATCH, owners) in delegated calls; a user without one
// manages only the applications they own ("Update application", "Add owner").
var applicationAdminRoles = []string{DirectoryRoleGlobalAdmin, DirectoryRoleApplicationAdmin, DirectoryRoleCloudApplicationAdmin}

// Roles that may assign Microsoft Graph's app roles in delegated calls: "Privileged Role
// Administrator - the least privileged role supported for Microsoft Graph and Azure AD Graph
// app roles" ("Grant an appRoleAssignment for a service principal").
var graphAppRoleAdminRoles = []string{DirectoryRoleGlobalAdmin, DirectoryRolePrivilegedRoleAdmin}

// graphAppRole is one of Microsoft Graph's app roles (application permissions), with the id
// Microsoft publishes in the Microsoft Graph permissions reference.
type graphAppRole struct {
	ID          string
	Value       string
	DisplayName string
}

// graphAppRoles are the app roles of Microsoft Graph's service principal that the emulator
// knows (a subset of Graph's hundreds).
var graphAppRoles = []graphAppRole{
	{"9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", RoleApplicationReadAll, "Read all applications"},
	{"1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9", RoleApplicationReadWriteAll, "Read and write all applications"},
	{"18a4783c-866b-4cc7-a460-3d5e5662c884", RoleApplicationReadWriteOwned, "Manage apps that this app creates or owns"},
	{"7ab1d382-f21e-4acd-a863-ba3e13f7da61", RoleDirectoryReadAll, "Read directory data"},
	{"19dbc75e-c2e2-444c-a770-ec69d8559fc7", RoleDirectoryReadWriteAll, "Read and write directory data"},
	{"06b708a9-e830-4db3-a914-8e69da51d44f", RoleAppRoleAssignmentReadWriteAll, "Manage app permission grants and app role assignments"},
}

// graphAppRoleByID returns the app role with id appRoleID.
func graphAppRoleByID(appRoleID string) (graphAppRole, bool) {
	for _, r := range graphAppRoles {
		if strings.EqualFold(r.ID, appRoleID) {
			return r, true
		}
	}
	return graphAppRole{}, false
}

// graphAppRoleByValue returns the app role whose value is v.
func graphAppRoleByValue(v string) (graphAppRole, bool) {
	for _, r := range graphAppRoles {
		if strings.EqualFold(r.Value, v) {
			return r, true
		}
	}
	return graphAppRole{}, false
}

// Delegated permissions (scopes) of Microsoft Graph the emulator knows, with Microsoft's ids.
const (
	ScopeApplicationReadAll          = "Application.Read.All"
	ScopeApplicationReadWriteAll     = "Application.ReadWrite.All"
	ScopeAppRoleAssignmentReadWrite  = "AppRoleAssignment.ReadWrite.All"
	ScopeDirectoryReadAll            = "Directory.Read.All"
	ScopeDirectoryReadWriteAll       = "Directory.ReadWrite.All"
	ScopeDirectoryAccessAsUserAll    = "Directory.AccessAsUser.All"
	ScopeUserRead                    = "User.Read"
	delegatedScopeIDApplicationRWAll = "bdfbf15f-ee85-4955-8675-146e8e5296b5"
)

// graphScopes are the delegated permissions of Microsoft Graph a client may ask for, by value
// and id.
var graphScopes = map[string]string{
	ScopeApplicationReadAll:         "c79f8feb-a9db-4090-85f9-90d820caa0eb",
	ScopeApplicationReadWriteAll:    delegatedScopeIDApplicationRWAll,
	ScopeAppRoleAssignmentReadWrite: "84bccea3-f856-4a8a-967b-dbe0a3d53a64",
	ScopeDirectoryReadAll:           "06da0dbc-49e2-44d2-8312-53f166ab848a",
	ScopeDirectoryReadWriteAll:      "c5366453-9fb0-48a5-a156-24f0c49a4b84",
	ScopeDirectoryAccessAsUserAll:   "0e263e50-5827-48a4-b97c-d940288653c7",
	ScopeUserRead:                   "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
}

// canonicalScope returns a Graph delegated permission's spelling, matched
// case-insensitively.
func canonicalScope(s string) (string, bool) {
	for v := range graphScopes {
		if strings.EqualFold(v, s) {
			return v, true
		}
	}
	return "", false
}

// First-party public clients that sign users in with the device code flow. Entra knows them
// in every tenant without an app registration there.
const (
	// GraphCommandLineToolsClientID is "Microsoft Graph Command Line Tools", the public client
	// of Connect-MgGraph, which asks for Graph's delegated permissions one by one (dynamic
	// consent).
	GraphCommandLineToolsClientID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
	// AzureCLIClientID is "Microsoft Azure CLI" (also azidentity's default developer client).
	AzureCLIClientID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
)

// publicClient is a first-party public client.
type publicClient struct {
	appID       string
	displayName string
	// preauthorized are the Graph scopes a ".default" request gets without consent (Azure
	// CLI's Graph tokens carry a fixed list; *inferred* subset).
	preauthorized []string
}

var publicClients = []publicClient{
	{GraphCommandLineToolsClientID, "Microsoft Graph Command Line Tools", nil},
	{AzureCLIClientID, "Microsoft Azure CLI", []string{
		ScopeApplicationReadWriteAll, ScopeAppRoleAssignmentReadWrite, ScopeDirectoryAccessAsUserAll, ScopeUserRead,
	}},
}

func publicClientByID(id string) (publicClient, bool) {
	for _, c := range publicClients {
		if strings.EqualFold(c.appID, id) {
			return c, true
		}
	}
	return publicClient{}, false
}

// graphSPID returns the id of Microsoft Graph's service principal in tenant t. Every tenant
// has one (Graph is a first-party app); the emulator derives its id from the tenant id, so it
// needs no state.
func graphSPID(t *tenant) string {
	return derivedGUID("graph-service-principal:" + strings.ToLower(t.ID))
}

// derivedGUID returns a GUID made from the SHA-256 of s (version 8, RFC 9562's custom form).
func derivedGUID(s string) string {
	sum := sha256.Sum256([]byte(s))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
