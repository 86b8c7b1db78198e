function Get-CertAgentCredential {
    <#
    .SYNOPSIS
    Gets the agent's own sign-in credential: its certificate's thumbprint, expiry and next
    renewal.

    .DESCRIPTION
    Asks the running agent (GET /api/v1/credential). The agent signs in to Entra ID with a
    certificate whose private key never leaves this machine, and renews it by itself. The
    result is a CertAgent.Credential: Method, ClientId (the agent's app registration),
    Thumbprint, Subject, NotBefore, NotAfter, NextRenewal, DaysRemaining. Before
    `certagent credential init` there is none: the error not_found.

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's.

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's.
    Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Get-CertAgentCredential

    .EXAMPLE
    (Get-CertAgentCredential).NextRenewal

    .OUTPUTS
    CertAgent.Credential

    .LINK
    Update-CertAgentCredential
    #>
    [CmdletBinding()]
    [OutputType('CertAgent.Credential')]
    param(
        [string] $BaseUri,

        [string] $TokenPath,

        [System.Security.SecureString] $Token
    )

    try {
        $connection = Resolve-CertAgentConnection -BaseUri $BaseUri -TokenPath $TokenPath -Token $Token
        $response = Invoke-CertAgentApi -Connection $connection -Method 'GET' -Path '/api/v1/credential'
        ConvertTo-CertAgentCredential $response.Body
    } catch {
        $PSCmdlet.ThrowTerminatingError($_)
    }
}
