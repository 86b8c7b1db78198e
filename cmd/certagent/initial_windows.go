package main

import (
	"errors"
	"net"

	"golang.org/x/sys/windows/registry"

	"github.com/aucloud/certagent/agent/config"
)

// registryKey is where the MSI stores its public properties, and where the PowerShell module
// looks for the agent (docs/contract.md, "Windows registry").
const registryKey = `SOFTWARE\CertAgent`

// initialValues returns the MSI's properties for a first config: TENANTID, CLIENTID,
// TARGETAPPID, CLOUD, AUTHORITYHOST, GRAPHURL, CAFILE, DROPFOLDER, APPROVAL, APIPORT and
// WEBHOOKURL, kept under HKLM\SOFTWARE\CertAgent (64-bit view). No key means no values.
func initialValues() (config.Initial, string, error) {
	_, defaultPort, _ := net.SplitHostPort(config.DefaultListen)
	const source = `the installer's properties (HKLM\` + registryKey + `)`
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, registryKey, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if errors.Is(err, registry.ErrNotExist) {
		return config.Initial{}, source, nil
	}
	if err != nil {
		return config.Initial{}, source, err
	}
	defer k.Close()
	get := func(name string) string {
		v, _, err := k.GetStringValue(name)
		if err != nil {
			return ""
		}
		return v
	}
	v := config.Initial{
		TenantID:      get("TenantId"),
		ClientID:      get("ClientId"),
		TargetAppID:   get("TargetAppId"),
		Cloud:         get("Cloud"),
		AuthorityHost: get("AuthorityHost"),
		GraphURL:      get("GraphUrl"),
		CAFile:        get("CaFile"),
		DropFolder:    get("DropFolder"),
		Approval:      get("Approval"),
		WebhookURL:    get("WebhookUrl"),
	}
	// APIPORT has a default in the MSI (config.DefaultListen's port): alone it is no reason
	// to write a config.
	if port := get("ApiPort"); port != "" && (port != defaultPort || !v.Empty()) {
		v.APIListen = "127.0.0.1:" + port
	}
	return v, source, nil
}
