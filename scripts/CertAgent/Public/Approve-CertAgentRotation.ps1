function Approve-CertAgentRotation {
    <#
    .SYNOPSIS
    Approves a rotation that waits for approval: the agent then adds its certificate to the
    app registration.

    .DESCRIPTION
    Only with policy.approval: manual do new certificates wait in pending_approval. Approving
    one (POST /api/v1/rotations/{id}/approve) moves it to applying: the agent adds the
    certificate to the provider's app registration, keeping every certificate already there,
    and reads the app back; the rotation is then applied. Returns the rotation after the
    action.

    A rotation in another state gives the error invalid_state. The agent records your user
    name (DOMAIN\user) and the note in the rotation's history and the audit log.

    ConfirmImpact is High: PowerShell asks before each approval unless you add
    -Confirm:$false. -WhatIf shows what would be approved.

    .PARAMETER Id
    The rotation's id; from the pipeline by the property Id or RotationId.

    .PARAMETER Note
    A note for the history and the audit log (at most 1000 characters).

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's.

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's.
    Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Get-CertAgentRotation -State pending_approval | Approve-CertAgentRotation -Note 'ticket CHG-1234'

    Approves every waiting rotation, asking for each.

    .EXAMPLE
    Get-CertAgentRotation -State pending_approval | Approve-CertAgentRotation -WhatIf

    Shows what would be approved, changes nothing.

    .EXAMPLE
    Approve-CertAgentRotation -Id 7d9f1c2e-5b1a-4c3e-9f0d-2a6b8c4d1e0f -Confirm:$false

    .OUTPUTS
    CertAgent.Rotation

    .LINK
    about_CertAgent
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')]
    [OutputType('CertAgent.Rotation')]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)]
        [Alias('RotationId')]
        [ValidateNotNullOrEmpty()]
        [string[]] $Id,

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
        foreach ($one in $Id) {
            if (-not $PSCmdlet.ShouldProcess("rotation $one", 'Approve: add its certificate to the app registration')) {
                continue
            }
            try {
                $body = $null
                if ($Note) {
                    $body = @{ note = $Note }
                }
                $response = Invoke-CertAgentApi -Connection $connection -Method 'POST' -Path '/api/v1/rotations/{id}/approve' -PathParameter @{ id = $one } -Body $body
                ConvertTo-CertAgentRotation $response.Body
            } catch {
                $PSCmdlet.ThrowTerminatingError($_)
            }
        }
    }
}
