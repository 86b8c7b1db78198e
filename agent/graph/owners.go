package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

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
	for page := 0; ; page++ {
		res, err := b.Get(ctx, nil)
		if err != nil {
			return nil, c.fail(ctx, opOwners, objectID, err, st)
		}
		if res == nil {
			return nil, c.invalidAnswer(opOwners, objectID, st, "Graph answered without a list")
		}
		for _, o := range res.GetValue() {
			if o == nil {
				continue
			}
			d := certs.DirectoryObject{ID: deref(o.GetId()), Type: strings.TrimPrefix(deref(o.GetOdataType()), "#microsoft.graph.")}
			switch v := o.(type) {
			case models.ServicePrincipalable:
				d.Type, d.AppID, d.DisplayName = certs.ObjectServicePrincipal, deref(v.GetAppId()), deref(v.GetDisplayName())
			case models.Userable:
				d.Type, d.UserPrincipalName, d.DisplayName = certs.ObjectUser, deref(v.GetUserPrincipalName()), deref(v.GetDisplayName())
			}
			out = append(out, d)
		}
		next := deref(res.GetOdataNextLink())
		if next == "" || page >= 100 {
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
