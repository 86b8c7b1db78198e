function Get-CertAgentAuditLog {
    <#
    .SYNOPSIS
    Gets the agent's audit log, newest first: every step of every rotation with who did it.

    .DESCRIPTION
    Reads GET /api/v1/audit page by page, following the answer's next cursor (passed back as
    ?before=) until the log ends, -First entries came, or the entries are older than -Since.
    Entries stream out as they arrive, so Select-Object -First stops the reading early too.
    Each entry is a CertAgent.AuditEntry: Seq, At, Action (for example intake.accepted,
    rotation.state, graph.write), Actor (agent, intake, policy, api or api:<user>), Outcome
    (ok, refused, error), RotationId, State, File, KeyId, Thumbprint, Code, Message.

    .PARAMETER Since
    Only entries at or after this time.

    .PARAMETER First
    At most this many entries (the newest).

    .PARAMETER PageSize
    Entries per request, 1 to 1000 (default 100).

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's.

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's.
    Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Get-CertAgentAuditLog -First 20

    .EXAMPLE
    Get-CertAgentAuditLog -Since (Get-Date).AddDays(-30) | Where-Object Outcome -ne 'ok'

    What went wrong or was refused in the last 30 days.

    .EXAMPLE
    Get-CertAgentAuditLog | Where-Object RotationId -eq $id | Export-Csv rotation-audit.csv -NoTypeInformation

    .OUTPUTS
    CertAgent.AuditEntry

    .LINK
    about_CertAgent
    #>
    [CmdletBinding()]
    [OutputType('CertAgent.AuditEntry')]
    param(
        [datetime] $Since,

        [ValidateRange(1, 2147483647)]
        [int] $First,

        [ValidateRange(1, 1000)]
        [int] $PageSize = 100,

        [string] $BaseUri,

        [string] $TokenPath,

        [System.Security.SecureString] $Token
    )

    try {
        $connection = Resolve-CertAgentConnection -BaseUri $BaseUri -TokenPath $TokenPath -Token $Token
        $haveSince = $PSBoundParameters.ContainsKey('Since')
        $sinceUtc = $null
        if ($haveSince) {
            $sinceUtc = $Since.ToUniversalTime()
        }
        $haveFirst = $PSBoundParameters.ContainsKey('First')
        $emitted = 0
        $before = $null
        while ($true) {
            $limit = $PageSize
            if ($haveFirst -and ($First - $emitted) -lt $limit) {
                $limit = $First - $emitted
            }
            $query = @{ limit = $limit }
            if ($null -ne $before) {
                $query['before'] = $before
            }
            $response = Invoke-CertAgentApi -Connection $connection -Method 'GET' -Path '/api/v1/audit' -Query $query
            foreach ($item in @(ConvertTo-CertAgentArray (Get-CertAgentValue $response.Body 'items'))) {
                $entry = ConvertTo-CertAgentAuditEntry $item
                if ($haveSince -and $null -ne $entry.At -and $entry.At.ToUniversalTime() -lt $sinceUtc) {
                    return
                }
                $entry
                $emitted++
                if ($haveFirst -and $emitted -ge $First) {
                    return
                }
            }
            $next = Get-CertAgentValue $response.Body 'next'
            if ($null -eq $next -or [uint64] $next -eq 0) {
                return
            }
            if ($null -ne $before -and [uint64] $next -ge [uint64] $before) {
                # The cursor must go down; stop rather than loop if it does not.
                Write-Warning ('CertAgent: the audit log''s next cursor {0} does not go below {1}; stopping' -f $next, $before)
                return
            }
            $before = [uint64] $next
        }
    } catch {
        $PSCmdlet.ThrowTerminatingError($_)
    }
}
