package agent

import (
	"fmt"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/config"
)

// PolicyFrom builds the certificate policy and the credential display-name template from
// the config's policy section.
func PolicyFrom(cfg *config.Config) (certpolicy.Policy, *certpolicy.NameTemplate, error) {
	p := certpolicy.Policy{
		MinRSABits:         cfg.Policy.MinRSABits,
		MinValidity:        time.Duration(cfg.Policy.MinValidityDays) * 24 * time.Hour,
		AllowedSubjects:    cfg.Policy.AllowedSubjects,
		AllowedIssuers:     cfg.Policy.AllowedIssuers,
		AllowedThumbprints: cfg.Policy.AllowedThumbprints,
	}
	if err := p.Validate(); err != nil {
		return p, nil, fmt.Errorf("policy: %w", err)
	}
	names, err := certpolicy.ParseNameTemplate(cfg.Policy.DisplayNameTemplate)
	if err != nil {
		return p, nil, fmt.Errorf("policy.display_name_template: %w", err)
	}
	return p, names, nil
}
