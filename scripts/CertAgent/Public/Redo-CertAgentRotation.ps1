function Redo-CertAgentRotation {
    <#
    .SYNOPSIS
    Retries a failed rotation: the agent tries again to add its certificate.

    .DESCRIPTION
    A rotation fails when Graph refused the change after retries (for example the agent
    lacked a permission or was not an owner of the app). Once the cause is fixed, retrying
    (POST /api/v1/rotations/{id}/retry) puts it back to applying. Returns the rotation after
    the action. A rotation that has not failed gives the error invalid_state.

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
    Get-CertAgentRotation -State failed | Redo-CertAgentRotation -Note 'owner added'

    .EXAMPLE
    Redo-CertAgentRotation -Id 7d9f1c2e-5b1a-4c3e-9f0d-2a6b8c4d1e0f -WhatIf

    .OUTPUTS
    CertAgent.Rotation

    .LINK
    about_CertAgent
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Medium')]
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
            if (-not $PSCmdlet.ShouldProcess("rotation $one", 'Retry: add its certificate again')) {
                continue
            }
            try {
                $body = $null
                if ($Note) {
                    $body = @{ note = $Note }
                }
                $response = Invoke-CertAgentApi -Connection $connection -Method 'POST' -Path '/api/v1/rotations/{id}/retry' -PathParameter @{ id = $one } -Body $body
                ConvertTo-CertAgentRotation $response.Body
            } catch {
                $PSCmdlet.ThrowTerminatingError($_)
            }
        }
    }
}
