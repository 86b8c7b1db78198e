package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// Demo tenant names and files.
const (
	DemoTargetDisplayName = "Veeam Backup for Microsoft 365"
	DemoAgentDisplayName  = "certagent"
	// DemoAgentFile holds the agent's demo certificate followed by its private key (PKCS#8),
	// as `az login -p` takes it.
	DemoAgentFile = "demo-agent.pem"
	// DemoNextProviderFile holds a fresh provider certificate (no key) to drop into the
	// agent's drop folder to see a rotation.
	DemoNextProviderFile = "demo-provider-next.cer"
)

// DemoInfo says what Demo created, for the caller to print.
type DemoInfo struct {
	TenantID          string `json:"tenantId"`
	Domain            string `json:"domain"`
	TargetAppID       string `json:"targetAppId"`
	TargetObjectID    string `json:"targetObjectId"`
	TargetDisplayName string `json:"targetDisplayName"`
	// ProviderThumbprint is the SHA-1 thumbprint of the provider certificate on the target
	// app, which expires about 20 days after the demo was made.
	ProviderThumbprint string    `json:"providerThumbprint"`
	ProviderNotAfter   time.Time `json:"providerNotAfter"`
	AgentAppID         string    `json:"agentAppId"`
	AgentObjectID      string    `json:"agentObjectId"`
	AgentThumbprint    string    `json:"agentThumbprint"`
	// AgentCredentialFile is the agent's certificate and private key (PEM, mode 0600).
	AgentCredentialFile string `json:"agentCredentialFile"`
	// NextProviderCertFile is the provider's next certificate, ready to drop.
	NextProviderCertFile   string `json:"nextProviderCertFile"`
	NextProviderThumbprint string `json:"nextProviderThumbprint"`
	// AdminUser is a Global Administrator of the tenant, who can approve a device code sign-in
	// (`certagent setup`).
	AdminUser string `json:"adminUser,omitempty"`
}

// DemoAdminUser is the demo tenant's Global Administrator (its domain appended).
const DemoAdminUser = "admin"

// Demo makes the demo tenant: the target app DemoTargetDisplayName holding a provider
// certificate (RSA 2048, CN "AUCloud VB365 <year>") that expires about 20 days after now, and
// the agent's own app DemoAgentDisplayName, owner of the target, with
// Application.ReadWrite.OwnedBy and a certificate whose certificate and key it writes to
// dir/DemoAgentFile. It also writes the provider's next certificate to
// dir/DemoNextProviderFile. New calls it when its directory holds no state and no seed was
// given; call it yourself only to build a seed by hand (it overwrites both files).
func Demo(dir string, now time.Time) (Seed, DemoInfo, error) {
	now = now.UTC().Truncate(time.Second)
	provNotAfter := now.Add(20 * 24 * time.Hour)
	provider, _, err := demoCert(fmt.Sprintf("AUCloud VB365 %d", provNotAfter.Year()), "AUCloud", now.Add(-345*24*time.Hour), provNotAfter)
	if err != nil {
		return Seed{}, DemoInfo{}, err
	}
	nextNotAfter := now.AddDate(1, 0, 0)
	next, _, err := demoCert(fmt.Sprintf("AUCloud VB365 %d", nextNotAfter.Year()), "AUCloud", now.Add(-time.Hour), nextNotAfter)
	if err != nil {
		return Seed{}, DemoInfo{}, err
	}
	agent, agentKey, err := demoCert("certagent", "", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	if err != nil {
		return Seed{}, DemoInfo{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(agentKey)
	if err != nil {
		return Seed{}, DemoInfo{}, fmt.Errorf("encoding demo agent key: %w", err)
	}
	agentPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: agent}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	agentFile := filepath.Join(dir, DemoAgentFile)
	if err := writeFileAtomic(agentFile, agentPEM, 0o600); err != nil {
		return Seed{}, DemoInfo{}, err
	}
	nextFile := filepath.Join(dir, DemoNextProviderFile)
	if err := writeFileAtomic(nextFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: next}), 0o644); err != nil {
		return Seed{}, DemoInfo{}, err
	}

	tenantID := newGUID()
	seed := Seed{
		TenantID: tenantID,
		Domain:   "aucloud-demo.onmicrosoft.com",
		Users: []SeedUser{{
			UserPrincipalName: DemoAdminUser, DisplayName: "Demo Administrator",
			DirectoryRoles: []string{DirectoryRoleGlobalAdmin},
		}},
		Applications: []SeedApplication{
			{
				DisplayName: DemoTargetDisplayName,
				AppID:       newGUID(), ObjectID: newGUID(), ServicePrincipalID: newGUID(),
				Owners: []string{DemoAgentDisplayName},
				KeyCredentials: []SeedKeyCredential{{
					Certificate: provider,
					DisplayName: fmt.Sprintf("CN=AUCloud VB365 %d", provNotAfter.Year()),
				}},
			},
			{
				DisplayName: DemoAgentDisplayName,
				AppID:       newGUID(), ObjectID: newGUID(), ServicePrincipalID: newGUID(),
				GraphRoles: []string{RoleApplicationReadWriteOwned},
				KeyCredentials: []SeedKeyCredential{{
					Certificate: agent,
					DisplayName: "certagent sign-in",
				}},
			},
		},
	}
	info := DemoInfo{
		TenantID:               tenantID,
		Domain:                 seed.Domain,
		TargetAppID:            seed.Applications[0].AppID,
		TargetObjectID:         seed.Applications[0].ObjectID,
		TargetDisplayName:      DemoTargetDisplayName,
		ProviderThumbprint:     certs.ThumbprintSHA1(provider),
		ProviderNotAfter:       provNotAfter,
		AgentAppID:             seed.Applications[1].AppID,
		AgentObjectID:          seed.Applications[1].ObjectID,
		AgentThumbprint:        certs.ThumbprintSHA1(agent),
		AgentCredentialFile:    agentFile,
		NextProviderCertFile:   nextFile,
		NextProviderThumbprint: certs.ThumbprintSHA1(next),
		AdminUser:              DemoAdminUser + "@" + seed.Domain,
	}
	return seed, info, nil
}

// demoCert makes a self-signed RSA 2048 certificate.
func demoCert(cn, org string, notBefore, notAfter time.Time) ([]byte, *rsa.PrivateKey, error) {
	key, err := generateRSAKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("generating demo key for %q: %w", cn, err)
	}
	subject := pkix.Name{CommonName: cn}
	if org != "" {
		subject.Organization = []string{org}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating demo certificate %q: %w", cn, err)
	}
	return der, key, nil
}

func saveDemoInfo(dir string, info DemoInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, fileDemo), append(b, '\n'), 0o644)
}

func loadDemoInfo(dir string) (DemoInfo, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileDemo))
	if errors.Is(err, os.ErrNotExist) {
		return DemoInfo{}, false, nil
	}
	if err != nil {
		return DemoInfo{}, false, fmt.Errorf("reading demo info: %w", err)
	}
	var info DemoInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return DemoInfo{}, false, fmt.Errorf("reading demo info %s: %w", filepath.Join(dir, fileDemo), err)
	}
	return info, true, nil
}
