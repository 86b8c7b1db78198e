package agent

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/graph"
)

// GraphClient builds a Graph client that signs in as the agent to the config's tenant, with
// its credential on disk and the config's endpoints and CAs, as a running agent does. It is
// for the commands that talk to Graph without an agent running (`certagent doctor`,
// `certagent store rebuild`); it returns the credential it loaded. log may be nil.
func GraphClient(cfg *config.Config, log *slog.Logger) (*graph.Client, *credential.Credential, error) {
	return GraphClientFor(cfg, cfg.TenantID, log)
}

// GraphClientFor is GraphClient for another tenant: a target's (targets[].tenant_id).
func GraphClientFor(cfg *config.Config, tenant string, log *slog.Logger) (*graph.Client, *credential.Credential, error) {
	c, err := credential.Load(CredentialFiles(cfg))
	if errors.Is(err, credential.ErrNotFound) {
		return nil, nil, fmt.Errorf("loading the agent's own credential: %w; run `certagent credential init` and upload the certificate it prints to the agent's app registration", err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading the agent's own credential: %w", err)
	}
	roots, err := RootCAs(cfg)
	if err != nil {
		return nil, nil, err
	}
	gc, err := graph.New(graph.Config{
		TenantID:      tenant,
		ClientID:      cfg.Auth.ClientID,
		AuthorityHost: cfg.AuthorityHost(),
		GraphURL:      cfg.GraphURL(),
		Credential:    credential.NewSource(c),
		RootCAs:       roots,
		Timeout:       cfg.Graph.Timeout.Duration(),
		Logger:        log,
	})
	if err != nil {
		return nil, nil, err
	}
	return gc, c, nil
}

// RootCAs returns the CAs the agent trusts for the token endpoint and Graph: cloud.ca_file's
// pool, or nil (the system's) without one.
func RootCAs(cfg *config.Config) (*x509.CertPool, error) {
	_, pool, err := rootCAs(cfg)
	return pool, err
}
