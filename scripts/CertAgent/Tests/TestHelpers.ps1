# Helpers for the CertAgent Pester tests: fake Invoke-WebRequest answers and errors in the
# shapes Windows PowerShell 5.1 and PowerShell 7 produce, and sample API JSON.

function New-FakeResponse {
    # An Invoke-WebRequest result: StatusCode, Content, RawContentStream (UTF-8 bytes), Headers.
    param(
        [int] $StatusCode = 200,
        [object] $Body
    )

    if ($Body -is [string]) {
        $json = $Body
    } else {
        $json = ConvertTo-Json -InputObject $Body -Depth 10
    }
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($json)
    return [pscustomobject]@{
        StatusCode       = $StatusCode
        Content          = $json
        RawContentStream = New-Object -TypeName System.IO.MemoryStream -ArgumentList @(, $bytes)
        Headers          = @{}
    }
}

function New-FakeHttpError {
    # The ErrorRecord Invoke-WebRequest throws for a non-2xx answer. PowerShell 7: an
    # exception whose Response has the StatusCode, the body in ErrorDetails.Message.
    # -WindowsPowerShell: 5.1's shape, the body only in Response.GetResponseStream().
    # -StatusCode 0: no answer at all (connection refused).
    param(
        [int] $StatusCode,
        [string] $Body = '',
        [switch] $WindowsPowerShell
    )

    if ($StatusCode -eq 0) {
        $exception = New-Object -TypeName System.Net.WebException -ArgumentList @('Unable to connect to the remote server')
        return (New-Object -TypeName System.Management.Automation.ErrorRecord -ArgumentList @($exception, 'WebCmdletWebResponseException', [System.Management.Automation.ErrorCategory]::InvalidOperation, $null))
    }
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($Body)
    $response = [pscustomobject]@{
        StatusCode = $StatusCode
        Headers    = @{}
    }
    $stream = New-Object -TypeName System.IO.MemoryStream -ArgumentList @(, $bytes)
    $response | Add-Member -MemberType NoteProperty -Name 'Stream' -Value $stream
    $response | Add-Member -MemberType ScriptMethod -Name 'GetResponseStream' -Value { $this.Stream }
    $exception = New-Object -TypeName System.Exception -ArgumentList @("Response status code does not indicate success: $StatusCode")
    $exception | Add-Member -MemberType NoteProperty -Name 'Response' -Value $response
    $record = New-Object -TypeName System.Management.Automation.ErrorRecord -ArgumentList @($exception, 'WebCmdletWebResponseException', [System.Management.Automation.ErrorCategory]::InvalidOperation, $null)
    if (-not $WindowsPowerShell) {
        $record.ErrorDetails = New-Object -TypeName System.Management.Automation.ErrorDetails -ArgumentList @($Body)
    }
    return $record
}

function New-ProblemJson {
    # An application/problem+json body.
    param(
        [int] $Status,
        [string] $Code,
        [string] $Detail,
        [string] $Title = 'Problem'
    )

    return (ConvertTo-Json -Depth 5 -InputObject @{
            type   = 'urn:certagent:problem:' + $Code
            title  = $Title
            status = $Status
            detail = $Detail
            code   = $Code
        })
}

function Get-BodyJson {
    # The JSON body Invoke-CertAgentApi sent (UTF-8 bytes), parsed; $null without a body.
    param(
        [object] $Body
    )

    if ($null -eq $Body) {
        return $null
    }
    return ([System.Text.Encoding]::UTF8.GetString([byte[]] $Body) | ConvertFrom-Json)
}

function New-RotationJson {
    # One rotation as the API returns it.
    param(
        [string] $Id,
        [string] $State = 'applied'
    )

    return [pscustomobject]@{
        id             = $Id
        state          = $State
        certificate    = [pscustomobject]@{
            thumbprint   = 'A1B2C3D4E5F60718293A4B5C6D7E8F9012345678'
            sha256       = '00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF'
            subject      = 'CN=Backup Provider 2027,O=Provider Ltd'
            issuer       = 'CN=Provider Issuing CA,O=Provider Ltd'
            serialNumber = '3E8'
            notBefore    = '2026-11-01T00:00:00Z'
            notAfter     = '2027-11-01T00:00:00Z'
            keyAlgorithm = 'RSA'
            keyBits      = 2048
        }
        source         = [pscustomobject]@{
            kind       = 'drop_folder'
            fileName   = 'provider.cer'
            archivedAs = '20261125T193000Z_provider.cer'
        }
        target         = [pscustomobject]@{
            appId       = '11111111-2222-3333-4444-555555555555'
            displayName = 'M365 Backup'
        }
        alreadyPresent = $false
        history        = @(
            [pscustomobject]@{
                at    = '2026-11-25T19:30:00Z'
                state = $State
                actor = 'agent'
            }
        )
        createdAt      = '2026-11-25T19:30:00Z'
        updatedAt      = '2026-11-25T19:30:03Z'
    }
}

function Get-StatusJson {
    # GET /api/v1/status with two problems, the less urgent first.
    return @'
{
  "version": "1.2.3",
  "startedAt": "2026-11-25T16:30:00Z",
  "uptimeSeconds": 10800,
  "tenantId": "99999999-8888-7777-6666-555555555555",
  "target": {"appId": "11111111-2222-3333-4444-555555555555", "displayName": "M365 Backup"},
  "dropFolder": "C:\\ProgramData\\CertAgent\\drop",
  "approval": "manual",
  "certificates": {"count": 2, "nextExpiry": "2026-11-28T00:00:00Z", "daysLeft": 2, "nextExpiryDisplayName": "Provider 2026"},
  "rotations": {"applied": 1, "applying": 0, "confirmed": 3, "failed": 0, "pending_approval": 1, "rejected": 0},
  "lastSync": {"at": "2026-11-25T19:25:00Z", "ok": true, "lastSuccess": "2026-11-25T19:25:00Z"},
  "credential": {"thumbprint": "FFEEDDCCBBAA99887766554433221100FFEEDDCC", "notAfter": "2027-05-01T00:00:00Z", "daysRemaining": 156},
  "problems": [
    {"code": "awaiting_approval", "severity": "info", "message": "1 rotation waits for approval"},
    {"code": "certificate_expiring", "severity": "critical", "message": "the certificate expires in 2 days"}
  ]
}
'@
}
