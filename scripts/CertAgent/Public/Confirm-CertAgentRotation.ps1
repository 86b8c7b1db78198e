function Confirm-CertAgentRotation {
    <#
    .SYNOPSIS
    Records that the provider was told the new certificate is in place: the last step of the
    yearly procedure.

    .DESCRIPTION
    Once a rotation is applied (its certificate is on the app registration), someone tells
    the provider, who then switches their backups to the new certificate. Confirming (POST
    /api/v1/rotations/{id}/confirm) records that this happened: applied -> confirmed, with
    your user name and the note in the history and the audit log. The status's
    awaiting_confirmation problem goes away. Returns the rotation after the action.

    A rotation that is not applied gives the error invalid_state.

    .PARAMETER Id
    The rotation's id; from the pipeline by the property Id or RotationId.

    .PARAMETER Note
    How the provider was told, for the record (at most 1000 characters).

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's.

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's.
    Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Get-CertAgentRotation -State applied | Confirm-CertAgentRotation -Note 'emailed AUCloud'

    .EXAMPLE
    Get-CertAgentRotation -State applied | Confirm-CertAgentRotation -WhatIf

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
            if (-not $PSCmdlet.ShouldProcess("rotation $one", 'Confirm: the provider was told')) {
                continue
            }
            try {
                $body = $null
                if ($Note) {
                    $body = @{ note = $Note }
                }
                $response = Invoke-CertAgentApi -Connection $connection -Method 'POST' -Path '/api/v1/rotations/{id}/confirm' -PathParameter @{ id = $one } -Body $body
                ConvertTo-CertAgentRotation $response.Body
            } catch {
                $PSCmdlet.ThrowTerminatingError($_)
            }
        }
    }
}
