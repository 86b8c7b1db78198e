function Deny-CertAgentRotation {
    <#
    .SYNOPSIS
    Rejects a rotation: its certificate is never added to the app registration.

    .DESCRIPTION
    Rejects a rotation that waits for approval or has failed (POST
    /api/v1/rotations/{id}/reject). Rejected is final for that certificate: submitting or
    dropping the same certificate again returns the rejected rotation and uploads nothing.
    Returns the rotation after the action.

    A rotation in a state that does not allow it gives the error invalid_state. The agent
    records your user name and the reason in the rotation's history and the audit log.

    ConfirmImpact is High: PowerShell asks before each rejection unless you add
    -Confirm:$false.

    .PARAMETER Id
    The rotation's id; from the pipeline by the property Id or RotationId.

    .PARAMETER Reason
    Why: kept in the history and the audit log (at most 1000 characters).

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's.

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's.
    Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Deny-CertAgentRotation -Id 7d9f1c2e-5b1a-4c3e-9f0d-2a6b8c4d1e0f -Reason 'not from our provider'

    .EXAMPLE
    Get-CertAgentRotation -State pending_approval | Where-Object Subject -notlike '*AUCloud*' | Deny-CertAgentRotation -Reason 'unexpected subject' -WhatIf

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
        [string] $Reason,

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
            if (-not $PSCmdlet.ShouldProcess("rotation $one", 'Reject: never add its certificate')) {
                continue
            }
            try {
                $body = $null
                if ($Reason) {
                    $body = @{ note = $Reason }
                }
                $response = Invoke-CertAgentApi -Connection $connection -Method 'POST' -Path '/api/v1/rotations/{id}/reject' -PathParameter @{ id = $one } -Body $body
                ConvertTo-CertAgentRotation $response.Body
            } catch {
                $PSCmdlet.ThrowTerminatingError($_)
            }
        }
    }
}
