function Get-CertAgentStatus {
    <#
    .SYNOPSIS
    Gets the agent's status: what needs a person first, then the target app, its
    certificates, pending work, the last Graph sync and the agent's own credential.

    .DESCRIPTION
    Asks the running agent (GET /api/v1/status). The result is one CertAgent.Status object
    whose Problems (CertAgent.Problem: Severity, Code, Message) come most urgent first and
    are shown first; Healthy is $false while a critical or warning problem is open. Problem
    codes are stable, for example certificate_expiring, certificate_expired, rotation_failed,
    awaiting_approval, awaiting_confirmation, graph_unreachable, drop_folder_unavailable,
    not_configured; the full list, with what each means, is in docs/contract.md ("Status
    problems") and the agent's OpenAPI document (StatusProblem). More may be added.

    The status is served from the agent's memory: it makes no Graph call.

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's (its config file, else HKLM:\SOFTWARE\CertAgent, else
    http://127.0.0.1:8471).

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's
    (<state>\api.token). Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Get-CertAgentStatus

    Shows the problems, then everything else, as a list.

    .EXAMPLE
    (Get-CertAgentStatus).Problems | Where-Object Severity -eq 'critical'

    Only the critical problems, as objects.

    .EXAMPLE
    if (-not (Get-CertAgentStatus).Healthy) { exit 1 }

    A monitoring check.

    .OUTPUTS
    CertAgent.Status

    .LINK
    about_CertAgent
    #>
    [CmdletBinding()]
    [OutputType('CertAgent.Status')]
    param(
        [string] $BaseUri,

        [string] $TokenPath,

        [System.Security.SecureString] $Token
    )

    try {
        $connection = Resolve-CertAgentConnection -BaseUri $BaseUri -TokenPath $TokenPath -Token $Token
        $response = Invoke-CertAgentApi -Connection $connection -Method 'GET' -Path '/api/v1/status'
        ConvertTo-CertAgentStatus $response.Body -BaseUri $connection.BaseUri
    } catch {
        $PSCmdlet.ThrowTerminatingError($_)
    }
}
