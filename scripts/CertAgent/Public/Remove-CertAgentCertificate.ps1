function Remove-CertAgentCertificate {
    <#
    .SYNOPSIS
    Retires an old certificate: removes it from the target app registration, under the
    agent's guards.

    .DESCRIPTION
    Asks the running agent to remove one certificate credential from a target's app
    registration (POST /api/v1/certificates/{keyId}/retire). The agent removes it by the same
    read-modify-write and read-back it uses to add certificates, keeping every other one, and
    records it in the audit log first. It refuses (error retire_refused, saying which guard)
    to remove the last valid certificate on the app, one the target's policy does not name as
    the provider's, one it first saw on the app less than retire.after ago, or the
    certificate of an unfinished rotation. Returns the removed certificate.

    With retire.enabled in the target's config the agent retires superseded certificates by
    itself; this command is for doing it by hand.

    .PARAMETER KeyId
    The credential's keyId; from the pipeline by the property KeyId (Get-CertAgentCertificate).

    .PARAMETER Target
    The target whose app holds it (its name in the agent's config); from the pipeline by the
    property Target. Default: the target whose app holds the keyId.

    .PARAMETER Note
    Why, for the audit log (at most 1000 characters).

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's.

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's.
    Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Get-CertAgentCertificate | Where-Object DaysRemaining -lt 0 | Remove-CertAgentCertificate -WhatIf

    Shows which expired certificates would be removed.

    .EXAMPLE
    Remove-CertAgentCertificate -KeyId 33333333-3333-4333-8333-333333333333 -Target exchange -Note 'superseded by 2027'

    .OUTPUTS
    CertAgent.Certificate

    .LINK
    about_CertAgent
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')]
    [OutputType('CertAgent.Certificate')]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)]
        [ValidateNotNullOrEmpty()]
        [string[]] $KeyId,

        [Parameter(ValueFromPipelineByPropertyName = $true)]
        [string] $Target,

        [ValidateLength(0, 1000)]
        [string] $Note,

        [string] $BaseUri,

        [string] $TokenPath,

        [System.Security.SecureString] $Token
    )

    begin {
        try {
            $connection = Resolve-CertAgentConnection -BaseUri $BaseUri -TokenPath $TokenPath -Token $Token
        } catch {
            $PSCmdlet.ThrowTerminatingError($_)
        }
    }

    process {
        foreach ($one in $KeyId) {
            $what = "certificate $one"
            if ($Target) {
                $what = "certificate $one of target $Target"
            }
            if (-not $PSCmdlet.ShouldProcess($what, 'Remove from the app registration')) {
                continue
            }
            try {
                $query = @{}
                if ($Target) {
                    $query['target'] = $Target
                }
                $body = $null
                if ($Note) {
                    $body = @{ note = $Note }
                }
                $response = Invoke-CertAgentApi -Connection $connection -Method 'POST' -Path '/api/v1/certificates/{keyId}/retire' -PathParameter @{ keyId = $one } -Query $query -Body $body
                ConvertTo-CertAgentCertificate $response.Body
            } catch {
                $PSCmdlet.ThrowTerminatingError($_)
            }
        }
    }
}
