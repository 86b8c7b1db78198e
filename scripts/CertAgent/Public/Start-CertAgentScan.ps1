function Start-CertAgentScan {
    <#
    .SYNOPSIS
    Makes the agent scan its drop folder now, instead of waiting for the next rescan.

    .DESCRIPTION
    The agent notices new files by file-system events and rescans the drop folder every
    minute (intake.rescan_interval). Start-CertAgentScan (POST /api/v1/scan) queues a rescan
    at once; it returns before the scan ends. A file is read once its size and time have
    stayed the same for the settle window (2 seconds by default). Outputs nothing unless
    -PassThru.

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
    Copy-Item .\provider-2027.cer (Get-CertAgentStatus).DropFolder; Start-CertAgentScan

    .EXAMPLE
    Start-CertAgentScan -PassThru

    .OUTPUTS
    None, or CertAgent.Accepted with -PassThru.

    .LINK
    about_CertAgent
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Low')]
    [OutputType('CertAgent.Accepted')]
    param(
        [switch] $PassThru,

        [string] $BaseUri,

        [string] $TokenPath,

        [System.Security.SecureString] $Token
    )

    try {
        $connection = Resolve-CertAgentConnection -BaseUri $BaseUri -TokenPath $TokenPath -Token $Token
        if (-not $PSCmdlet.ShouldProcess($connection.BaseUri, 'Rescan the drop folder')) {
            return
        }
        $response = Invoke-CertAgentApi -Connection $connection -Method 'POST' -Path '/api/v1/scan'
        $message = Get-CertAgentValue $response.Body 'message'
        Write-Verbose ('CertAgent: {0}' -f $message)
        if ($PassThru) {
            [pscustomobject]@{
                PSTypeName = 'CertAgent.Accepted'
                Operation  = 'scan'
                Message    = $message
                At         = Get-Date
            }
        }
    } catch {
        $PSCmdlet.ThrowTerminatingError($_)
    }
}
