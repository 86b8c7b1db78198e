package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/aucloud/certagent/agent/certs"
)

// Owners lists the owners of the application with object id objectID: GET
// /applications/{objectID}/owners, following @odata.nextLink. It needs the permissions a read
// of the application needs. Compare owners by ID: with Application.ReadWrite.OwnedBy alone
// Graph may leave their other properties out.
//
// Owners are users and service principals (certs.DirectoryObject); with Application.Read.All
// or ReadWrite.OwnedBy alone, Graph may give their type and id only (docs/graph.md, "List
// owners").
func (c *Client) Owners(ctx context.Context, objectID string) ([]certs.DirectoryObject, error) {
	if !isGUID(objectID) {
		return nil, c.invalid(opOwners, objectID, "the object id is not a GUID")
	}
	ctx, st, cancel := c.begin(ctx, opOwners)
	defer cancel()
	b := c.item(objectID).Owners()
	var out []certs.DirectoryObject
	for n := 0; ; n++ {
		ri, err := b.ToGetRequestInformation(ctx, nil)
		if err != nil {
			return nil, c.invalid(opOwners, objectID, err.Error())
		}
		res, err := c.adapter.Send(ctx, ri, pageOf[*directoryObject](createDirectoryObject), errorMapping)
		if err != nil {
			return nil, c.fail(ctx, opOwners, objectID, err, st)
		}
		p, _ := res.(*page[*directoryObject])
		if p == nil {
			return nil, c.invalidAnswer(opOwners, objectID, st, "Graph answered without a list")
		}
		for _, o := range p.value {
			if o == nil {
				continue
			}
			typ := deref(o.odataType)
			d := certs.DirectoryObject{ID: deref(o.id), Type: strings.TrimPrefix(typ, "#microsoft.graph.")}
			// As the SDK's discriminator does, only these exact @odata.type values make a
			// service principal or a user.
			switch typ {
			case odataServicePrincipal:
				d.Type, d.AppID, d.DisplayName = certs.ObjectServicePrincipal, deref(o.appID), deref(o.displayName)
			case odataUser:
				d.Type, d.UserPrincipalName, d.DisplayName = certs.ObjectUser, deref(o.userPrincipalName), deref(o.displayName)
			}
			out = append(out, d)
		}
		next := deref(p.nextLink)
		if next == "" || n >= 100 {
			return out, nil
		}
		b = b.WithUrl(next)
	}
}

// ServicePrincipalID returns the object id of the agent's own service principal in the
// tenant: the oid claim of its access token for Graph (it signs in when it holds none). An
// application's owners name it by this id. Its errors are *Error.
func (c *Client) ServicePrincipalID(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return "", e
		}
		return "", c.classify(opToken, c.clientID, err, nil, ctx.Err())
	}
	// Graph's access tokens are signed JWTs; only the token endpoint's signature vouches for
	// them, and the claim is read, not trusted for anything but naming the agent.
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		return "", c.invalid(opToken, c.clientID, "the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", c.invalid(opToken, c.clientID, "the access token's claims do not decode: "+err.Error())
	}
	var claims struct {
		OID string `json:"oid"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.OID == "" {
		return "", c.invalid(opToken, c.clientID, "the access token carries no oid claim")
	}
	return claims.OID, nil
}
