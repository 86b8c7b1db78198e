function Update-CertAgentCredential {
    <#
    .SYNOPSIS
    Makes the agent renew its own sign-in credential now.

    .DESCRIPTION
    The agent signs in to Entra ID with a certificate of its own and renews it by itself
    before it expires (auth.renew_before). Update-CertAgentCredential (POST
    /api/v1/credential/rotate) starts a renewal now: a new key pair on this machine, its
    certificate added to the agent's app registration. It returns once the renewal started;
    Get-CertAgentCredential shows the result. A renewal already under way gives the error
    invalid_state. Outputs nothing unless -PassThru.

    .PARAMETER PassThru
    Output the agent's answer (a CertAgent.Accepted with its message).

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's.

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's.
    Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Update-CertAgentCredential

    Asks first (ConfirmImpact Medium asks only with -Confirm or $ConfirmPreference Medium).

    .EXAMPLE
    Update-CertAgentCredential -WhatIf

    .OUTPUTS
    None, or CertAgent.Accepted with -PassThru.

    .LINK
    Get-CertAgentCredential
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Medium')]
    [OutputType('CertAgent.Accepted')]
    param(
        [switch] $PassThru,

        [string] $BaseUri,

        [string] $TokenPath,

        [System.Security.SecureString] $Token
    )

    try {
        $connection = Resolve-CertAgentConnection -BaseUri $BaseUri -TokenPath $TokenPath -Token $Token
        if (-not $PSCmdlet.ShouldProcess($connection.BaseUri, 'Renew the agent''s own sign-in credential')) {
            return
        }
        $response = Invoke-CertAgentApi -Connection $connection -Method 'POST' -Path '/api/v1/credential/rotate'
        $message = Get-CertAgentValue $response.Body 'message'
        Write-Verbose ('CertAgent: {0}' -f $message)
        if ($PassThru) {
            [pscustomobject]@{
                PSTypeName = 'CertAgent.Accepted'
                Operation  = 'credential/rotate'
                Message    = $message
                At         = Get-Date
            }
        }
    } catch {
        $PSCmdlet.ThrowTerminatingError($_)
    }
}
