package agent

import (
	"fmt"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/config"
)

// PolicyFrom builds the certificate policy and the credential display-name template from
// the config's policy section.
func PolicyFrom(cfg *config.Config) (certpolicy.Policy, *certpolicy.NameTemplate, error) {
	p := cfg.Policy.CertPolicy()
	if err := p.Validate(); err != nil {
		return p, nil, fmt.Errorf("policy: %w", err)
	}
	names, err := certpolicy.ParseNameTemplate(cfg.Policy.DisplayNameTemplate)
	if err != nil {
		return p, nil, fmt.Errorf("policy.display_name_template: %w", err)
	}
	return p, names, nil
}
