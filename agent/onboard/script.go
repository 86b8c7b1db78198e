package onboard

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aucloud/certagent/agent/certs"
)

// recorder is the Directory of a dry run: it prints each call (all are reads) before making
// it.
type recorder struct {
	dir  Directory
	out  io.Writer
	base string
}

var _ Directory = (*recorder)(nil)

func (d *recorder) call(line string) { fmt.Fprintf(d.out, "  %s\n", line) }

const appSelect = "$select=id,appId,displayName,keyCredentials"

func (d *recorder) FindApplications(ctx context.Context, name string) ([]certs.Application, error) {
	d.call(fmt.Sprintf(`GET %s/applications?$search="displayName:%s"&%s   (header ConsistencyLevel: eventual)`, d.base, name, appSelect))
	return d.dir.FindApplications(ctx, name)
}

func (d *recorder) ApplicationsNamed(ctx context.Context, name string) ([]certs.Application, error) {
	d.call(fmt.Sprintf("GET %s/applications?$filter=displayName eq '%s'&%s", d.base, strings.ReplaceAll(name, "'", "''"), appSelect))
	return d.dir.ApplicationsNamed(ctx, name)
}

func (d *recorder) Application(ctx context.Context, appID string) (certs.Application, bool, error) {
	d.call(fmt.Sprintf("GET %s/applications(appId='%s')?%s", d.base, appID, appSelect))
	return d.dir.Application(ctx, appID)
}

func (d *recorder) Owners(ctx context.Context, objectID string) ([]certs.DirectoryObject, error) {
	d.call(fmt.Sprintf("GET %s/applications/%s/owners", d.base, objectID))
	return d.dir.Owners(ctx, objectID)
}

func (d *recorder) ServicePrincipal(ctx context.Context, appID string) (certs.ServicePrincipal, bool, error) {
	d.call(fmt.Sprintf("GET %s/servicePrincipals?$filter=appId eq '%s'&$select=id,appId,displayName,appRoles", d.base, appID))
	return d.dir.ServicePrincipal(ctx, appID)
}

func (d *recorder) AppRoleAssignments(ctx context.Context, spID string) ([]certs.AppRoleAssignment, error) {
	d.call(fmt.Sprintf("GET %s/servicePrincipals/%s/appRoleAssignments", d.base, spID))
	return d.dir.AppRoleAssignments(ctx, spID)
}

// The writes are never called in a dry run; they refuse, to be sure.

func (d *recorder) CreateApplication(context.Context, string) (certs.Application, error) {
	return certs.Application{}, errDryRun
}

func (d *recorder) CreateServicePrincipal(context.Context, string) (certs.ServicePrincipal, error) {
	return certs.ServicePrincipal{}, errDryRun
}

func (d *recorder) AssignAppRole(context.Context, string, string, string) (certs.AppRoleAssignment, error) {
	return certs.AppRoleAssignment{}, errDryRun
}

func (d *recorder) AddOwner(context.Context, string, string) error { return errDryRun }

func (d *recorder) Replace(context.Context, string, []certs.KeyCredential) error { return errDryRun }

var errDryRun = fmt.Errorf("a dry run changes nothing")

func jsonText(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSpace(b.String())
}

// ids returns the ids the printed calls and scripts use: the real ones, or placeholders for
// what the plan creates.
func (r *run) ids() (appObjectID, appID, spID string) {
	appObjectID, appID, spID = r.agentApp.ObjectID, r.agentApp.AppID, r.agentSP.ID
	if !r.agentAppFound {
		appObjectID, appID = placeholderApp, placeholderAppID
	}
	if !r.agentSPFound {
		spID = placeholderSP
	}
	return appObjectID, appID, spID
}

// printDryRun prints the Graph calls the plan makes, the local steps, and the same as Azure CLI
// and Microsoft Graph PowerShell scripts.
func (r *run) printDryRun() {
	base := r.o.GraphBaseURL
	objectID, appID, spID := r.ids()
	w := r.out
	fmt.Fprintln(w, "\nGraph calls setup would make, as the signed-in administrator:")
	call := func(method, url string, body any) {
		fmt.Fprintf(w, "  %s %s\n", method, url)
		if body != nil {
			fmt.Fprintf(w, "      %s\n", jsonText(body))
		}
	}
	for _, s := range r.steps {
		switch s {
		case stepCreateApp:
			call("POST", base+"/applications", map[string]string{"displayName": r.o.AgentName, "signInAudience": "AzureADMyOrg"})
		case stepCreateSP:
			call("POST", base+"/servicePrincipals", map[string]string{"appId": appID})
		case stepAssignRole:
			call("POST", base+"/servicePrincipals/"+r.graphSP.ID+"/appRoleAssignedTo",
				map[string]string{"principalId": spID, "resourceId": r.graphSP.ID, "appRoleId": r.roleID})
		case stepOwnProvider:
			call("POST", base+"/applications/"+r.provider.ObjectID+"/owners/$ref", map[string]string{"@odata.id": base + "/directoryObjects/" + spID})
		case stepOwnSelf:
			call("POST", base+"/applications/"+objectID+"/owners/$ref", map[string]string{"@odata.id": base + "/directoryObjects/" + spID})
		case stepUploadCert:
			call("GET", base+"/applications(appId='"+appID+"')?"+appSelect, nil)
			var creds []map[string]any
			for _, k := range r.agentApp.KeyCredentials {
				creds = append(creds, map[string]any{"keyId": k.KeyID, "key": nil, "type": k.Type, "usage": k.Usage})
			}
			key := "<base64 of the certificate in " + r.o.CredentialFiles.Cert + ">"
			if r.cred != nil {
				key = base64.StdEncoding.EncodeToString(r.cred.Cert.Raw)
				if len(key) > 48 {
					key = key[:48] + "..."
				}
			}
			creds = append(creds, map[string]any{"keyId": "<new GUID>", "type": certs.KeyTypeX509Cert, "usage": certs.KeyUsageVerify, "key": key, "displayName": "certagent sign-in"})
			call("PATCH", base+"/applications/"+objectID, map[string]any{"keyCredentials": creds})
		}
	}
	var local []string
	if slices.Contains(r.steps, stepInitKey) {
		local = append(local, r.describe(stepInitKey))
	}
	if slices.Contains(r.steps, stepWriteConfig) {
		local = append(local, r.describe(stepWriteConfig))
	}
	if len(local) > 0 {
		fmt.Fprintln(w, "\nOn this machine, setup would:")
		for _, l := range local {
			fmt.Fprintf(w, "  - %s\n", l)
		}
	}
	fmt.Fprintln(w, "\nThe same with the Azure CLI (bash), signed in as an administrator (az login --tenant "+r.o.TenantID+" --allow-no-subscriptions):")
	fmt.Fprintln(w)
	for _, l := range r.azScript() {
		fmt.Fprintln(w, "    "+l)
	}
	fmt.Fprintln(w, "\nThe same with Microsoft Graph PowerShell:")
	fmt.Fprintln(w)
	for _, l := range r.psScript() {
		fmt.Fprintln(w, "    "+l)
	}
	fmt.Fprintln(w, "\nThen run `certagent setup` again (or write the config above by hand): it finds what the script made and changes nothing.")
}

// graphRoot is the Graph URL the scripts call with `az rest`.
func (r *run) graphRoot() string { return r.o.GraphBaseURL }

// azScript is the plan as a bash script of Azure CLI commands.
func (r *run) azScript() []string {
	_, appID, spID := r.ids()
	has := func(s string) bool { return slices.Contains(r.steps, s) }
	var l []string
	l = append(l, "set -e", "GRAPH_SP_ID="+r.graphSP.ID+"   # Microsoft Graph's service principal: az ad sp show --id "+GraphAppID+" --query id -o tsv")
	if has(stepCreateApp) {
		l = append(l, "AGENT_APP_ID=$(az ad app create --display-name "+shQuote(r.o.AgentName)+" --sign-in-audience AzureADMyOrg --query appId -o tsv)")
	} else {
		l = append(l, "AGENT_APP_ID="+appID)
	}
	if has(stepCreateSP) {
		l = append(l, `AGENT_SP_ID=$(az ad sp create --id "$AGENT_APP_ID" --query id -o tsv)`)
	} else {
		l = append(l, "AGENT_SP_ID="+spID)
	}
	if has(stepAssignRole) {
		l = append(l, `az rest --method POST --uri "`+r.graphRoot()+`/servicePrincipals/$GRAPH_SP_ID/appRoleAssignedTo" \`,
			`  --headers Content-Type=application/json \`,
			`  --body "{\"principalId\":\"$AGENT_SP_ID\",\"resourceId\":\"$GRAPH_SP_ID\",\"appRoleId\":\"`+r.roleID+`\"}"`)
	}
	if has(stepOwnProvider) {
		l = append(l, `az ad app owner add --id `+r.provider.AppID+` --owner-object-id "$AGENT_SP_ID"`)
	}
	if has(stepOwnSelf) {
		l = append(l, `az ad app owner add --id "$AGENT_APP_ID" --owner-object-id "$AGENT_SP_ID"`)
	}
	if has(stepInitKey) {
		l = append(l, "# on the agent's machine: creates "+r.o.CredentialFiles.Cert+" (and the private key beside it)",
			"certagent credential init -c "+shQuote(r.o.ConfigFile))
	}
	if has(stepUploadCert) {
		l = append(l, `az ad app credential reset --id "$AGENT_APP_ID" --cert @`+shQuote(r.o.CredentialFiles.Cert)+` --append`)
	}
	if has(stepWriteConfig) {
		l = append(l, r.configLines("#", `$AGENT_APP_ID`)...)
		l = append(l, `echo "auth.client_id: $AGENT_APP_ID"`)
	}
	return l
}

// configLines are the config keys setup writes, as comment lines of a script; appID stands
// for the agent's app id where the script creates the app.
func (r *run) configLines(comment, appID string) []string {
	if r.agentAppFound {
		appID = r.agentApp.AppID
	}
	return []string{
		comment + " then, on the agent's machine, in " + r.o.ConfigFile + " (or run `certagent setup` again, which writes it):",
		comment + `   tenant_id: "` + r.o.TenantID + `"`,
		comment + "   auth:",
		comment + `     client_id: "` + appID + `"`,
		comment + "   target:",
		comment + `     app_id: "` + r.provider.AppID + `"`,
	}
}

// psScript is the plan as Microsoft Graph PowerShell commands.
func (r *run) psScript() []string {
	_, appID, spID := r.ids()
	has := func(s string) bool { return slices.Contains(r.steps, s) }
	var l []string
	l = append(l,
		"Connect-MgGraph -TenantId "+psQuote(r.o.TenantID)+" -Scopes 'Application.ReadWrite.All','AppRoleAssignment.ReadWrite.All' -UseDeviceCode",
		"$graphSp = Get-MgServicePrincipal -Filter \"appId eq '"+GraphAppID+"'\"",
		"$provider = Get-MgApplication -Filter \"appId eq '"+r.provider.AppID+"'\"")
	if has(stepCreateApp) {
		l = append(l, "$agentApp = New-MgApplication -DisplayName "+psQuote(r.o.AgentName)+" -SignInAudience AzureADMyOrg")
	} else {
		l = append(l, "$agentApp = Get-MgApplication -Filter \"appId eq '"+appID+"'\"")
	}
	if has(stepCreateSP) {
		l = append(l, "$agentSp = New-MgServicePrincipal -AppId $agentApp.AppId")
	} else {
		l = append(l, "$agentSp = Get-MgServicePrincipal -ServicePrincipalId "+psQuote(spID))
	}
	if has(stepAssignRole) {
		l = append(l, "New-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $agentSp.Id -PrincipalId $agentSp.Id -ResourceId $graphSp.Id -AppRoleId "+psQuote(r.roleID))
	}
	ref := "@{ '@odata.id' = \"" + r.graphRoot() + "/directoryObjects/$($agentSp.Id)\" }"
	if has(stepOwnProvider) {
		l = append(l, "New-MgApplicationOwnerByRef -ApplicationId $provider.Id -BodyParameter "+ref)
	}
	if has(stepOwnSelf) {
		l = append(l, "New-MgApplicationOwnerByRef -ApplicationId $agentApp.Id -BodyParameter "+ref)
	}
	if has(stepInitKey) {
		l = append(l, "# on the agent's machine: creates "+r.o.CredentialFiles.Cert+" (and the private key beside it)",
			"certagent credential init -c "+psQuote(r.o.ConfigFile))
	}
	if has(stepUploadCert) {
		l = append(l,
			"$cert = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new("+psQuote(r.o.CredentialFiles.Cert)+")",
			"# keyCredentials are replaced as a whole: keep every certificate already there",
			"$keys = @((Get-MgApplication -ApplicationId $agentApp.Id -Property keyCredentials).KeyCredentials) + @(@{ Type = 'AsymmetricX509Cert'; Usage = 'Verify'; Key = $cert.RawData; DisplayName = 'certagent sign-in' })",
			"Update-MgApplication -ApplicationId $agentApp.Id -KeyCredentials $keys")
	}
	if has(stepWriteConfig) {
		l = append(l, r.configLines("#", "<$agentApp.AppId>")...)
		l = append(l, `"auth.client_id: $($agentApp.AppId)"`)
	}
	return l
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func psQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
