function Get-CertAgentCertificate {
    <#
    .SYNOPSIS
    Gets the certificates on the target app registration (the provider's app), as the agent
    last read them from Microsoft Graph.

    .DESCRIPTION
    Asks the running agent (GET /api/v1/certificates). Each certificate credential of the app
    is a CertAgent.Certificate: Thumbprint (as the Azure portal shows it), DisplayName,
    StartDateTime, EndDateTime, DaysRemaining, AddedByAgent, KeyId, RotationId (when the
    agent added it) and SyncedAt (when the agent read the app).

    .PARAMETER Target
    Only the certificates of this target (its name in the agent's config; see
    Get-CertAgentStatus's Targets). Default: every target's.

    .PARAMETER Refresh
    Read the app from Graph first instead of answering from the agent's last read. The agent
    limits how often; too often gives the error rate_limited.

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's.

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's.
    Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Get-CertAgentCertificate

    .EXAMPLE
    Get-CertAgentCertificate -Refresh | Sort-Object EndDateTime | Select-Object -Last 1

    The certificate that lasts longest, read fresh from Graph.

    .EXAMPLE
    Get-CertAgentCertificate | Where-Object DaysRemaining -lt 30

    .EXAMPLE
    Get-CertAgentCertificate -Target teams

    .OUTPUTS
    CertAgent.Certificate

    .LINK
    about_CertAgent
    #>
    [CmdletBinding()]
    [OutputType('CertAgent.Certificate')]
    param(
        [string] $Target,

        [switch] $Refresh,

        [string] $BaseUri,

        [string] $TokenPath,

        [System.Security.SecureString] $Token
    )

    try {
        $connection = Resolve-CertAgentConnection -BaseUri $BaseUri -TokenPath $TokenPath -Token $Token
        $query = @{}
        if ($Refresh) {
            $query['refresh'] = 'true'
        }
        if ($Target) {
            $query['target'] = $Target
        }
        $response = Invoke-CertAgentApi -Connection $connection -Method 'GET' -Path '/api/v1/certificates' -Query $query
        $syncedAt = Get-CertAgentValue $response.Body 'syncedAt'
        foreach ($item in @(ConvertTo-CertAgentArray (Get-CertAgentValue $response.Body 'items'))) {
            ConvertTo-CertAgentCertificate $item -SyncedAt $syncedAt
        }
    } catch {
        $PSCmdlet.ThrowTerminatingError($_)
    }
}
