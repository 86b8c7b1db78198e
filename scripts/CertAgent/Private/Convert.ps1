# API JSON (api/apitype) to PowerShell objects: one PSTypeName per kind (the format views in
# CertAgent.Format.ps1xml key on them), PascalCase properties, [datetime] times in local time.

$script:CertAgentSeverityRank = @{
    'critical' = 0
    'warning'  = 1
    'info'     = 2
}

function ConvertTo-CertAgentCertificateFacts {
    <#
    .SYNOPSIS
    The facts about one X.509 certificate (API CertificateFacts), or $null.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [AllowNull()]
        [object] $InputObject
    )

    if ($null -eq $InputObject) {
        return $null
    }
    return [pscustomobject]@{
        PSTypeName   = 'CertAgent.CertificateFacts'
        Thumbprint   = Get-CertAgentValue $InputObject 'thumbprint'
        Subject      = Get-CertAgentValue $InputObject 'subject'
        Issuer       = Get-CertAgentValue $InputObject 'issuer'
        NotBefore    = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'notBefore')
        NotAfter     = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'notAfter')
        SerialNumber = Get-CertAgentValue $InputObject 'serialNumber'
        Sha256       = Get-CertAgentValue $InputObject 'sha256'
        KeyAlgorithm = Get-CertAgentValue $InputObject 'keyAlgorithm'
        KeyBits      = Get-CertAgentValue $InputObject 'keyBits'
    }
}

function ConvertTo-CertAgentProblem {
    <#
    .SYNOPSIS
    One status problem: something that needs a person (API StatusProblem).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [object] $InputObject
    )

    return [pscustomobject]@{
        PSTypeName = 'CertAgent.Problem'
        Severity   = Get-CertAgentValue $InputObject 'severity'
        Code       = Get-CertAgentValue $InputObject 'code'
        Message    = Get-CertAgentValue $InputObject 'message'
        Target     = Get-CertAgentValue $InputObject 'target'
    }
}

function ConvertTo-CertAgentStatus {
    <#
    .SYNOPSIS
    The agent's status (API Status), problems first and most urgent first.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [object] $InputObject,

        [string] $BaseUri
    )

    $problems = @()
    $position = 0
    $ranked = foreach ($p in @(ConvertTo-CertAgentArray (Get-CertAgentValue $InputObject 'problems'))) {
        $problem = ConvertTo-CertAgentProblem $p
        $rank = $script:CertAgentSeverityRank[[string] $problem.Severity]
        if ($null -eq $rank) {
            $rank = 3
        }
        [pscustomobject]@{
            Rank     = $rank
            Position = $position
            Problem  = $problem
        }
        $position++
    }
    if ($null -ne $ranked) {
        $problems = @(@($ranked) | Sort-Object -Property 'Rank', 'Position' | ForEach-Object { $_.Problem })
    }
    $urgent = @($problems | Where-Object { $_.Severity -eq 'critical' -or $_.Severity -eq 'warning' })

    $targets = @(
        foreach ($t in @(ConvertTo-CertAgentArray (Get-CertAgentValue $InputObject 'targets'))) {
            $tApp = Get-CertAgentValue $t 'target'
            $tSummary = Get-CertAgentValue $t 'certificates'
            $tCounts = Get-CertAgentValue $t 'rotations'
            $tSync = Get-CertAgentValue $t 'lastSync'
            [pscustomobject]@{
                PSTypeName           = 'CertAgent.TargetStatus'
                Name                 = Get-CertAgentValue $t 'name'
                TenantId             = Get-CertAgentValue $t 'tenantId'
                AppId                = Get-CertAgentValue $tApp 'appId'
                DisplayName          = Get-CertAgentValue $tApp 'displayName'
                DropFolder           = Get-CertAgentValue $t 'dropFolder'
                Approval             = Get-CertAgentValue $t 'approval'
                CertificateCount     = Get-CertAgentValue $tSummary 'count'
                NextExpiry           = ConvertTo-CertAgentDateTime (Get-CertAgentValue $tSummary 'nextExpiry')
                DaysLeft             = Get-CertAgentValue $tSummary 'daysLeft'
                PendingApproval      = Get-CertAgentValue $tCounts 'pending_approval'
                AwaitingConfirmation = Get-CertAgentValue $tCounts 'applied'
                Failed               = Get-CertAgentValue $tCounts 'failed'
                LastSync             = ConvertTo-CertAgentDateTime (Get-CertAgentValue $tSync 'at')
                LastSyncOk           = Get-CertAgentValue $tSync 'ok'
            }
        }
    )
    $target = Get-CertAgentValue $InputObject 'target'
    $summary = Get-CertAgentValue $InputObject 'certificates'
    $counts = Get-CertAgentValue $InputObject 'rotations'
    $sync = Get-CertAgentValue $InputObject 'lastSync'
    $syncError = Get-CertAgentValue $sync 'error'
    $credential = Get-CertAgentValue $InputObject 'credential'
    $uptime = $null
    $seconds = Get-CertAgentValue $InputObject 'uptimeSeconds'
    if ($null -ne $seconds) {
        $uptime = [timespan]::FromSeconds([double] $seconds)
    }
    $syncErrorText = $null
    if ($null -ne $syncError) {
        $syncErrorText = '{0}: {1}' -f (Get-CertAgentValue $syncError 'code'), (Get-CertAgentValue $syncError 'message')
    }
    $appName = Get-CertAgentValue $target 'displayName'
    $appId = Get-CertAgentValue $target 'appId'
    $targetApp = $appId
    if ($appName) {
        $targetApp = '{0} ({1})' -f $appName, $appId
    }

    return [pscustomobject]@{
        PSTypeName              = 'CertAgent.Status'
        Problems                = $problems
        Healthy                 = ($urgent.Count -eq 0)
        TargetApp               = $targetApp
        TargetAppId             = $appId
        TargetObjectId          = Get-CertAgentValue $target 'objectId'
        TargetDisplayName       = $appName
        TenantId                = Get-CertAgentValue $InputObject 'tenantId'
        CertificateCount        = Get-CertAgentValue $summary 'count'
        NextExpiry              = ConvertTo-CertAgentDateTime (Get-CertAgentValue $summary 'nextExpiry')
        DaysLeft                = Get-CertAgentValue $summary 'daysLeft'
        NextExpiryThumbprint    = Get-CertAgentValue $summary 'nextExpiryThumbprint'
        NextExpiryDisplayName   = Get-CertAgentValue $summary 'nextExpiryDisplayName'
        PendingApproval         = Get-CertAgentValue $counts 'pending_approval'
        Applying                = Get-CertAgentValue $counts 'applying'
        AwaitingConfirmation    = Get-CertAgentValue $counts 'applied'
        Confirmed               = Get-CertAgentValue $counts 'confirmed'
        Rejected                = Get-CertAgentValue $counts 'rejected'
        Failed                  = Get-CertAgentValue $counts 'failed'
        LastSync                = ConvertTo-CertAgentDateTime (Get-CertAgentValue $sync 'at')
        LastSyncOk              = Get-CertAgentValue $sync 'ok'
        LastSyncSuccess         = ConvertTo-CertAgentDateTime (Get-CertAgentValue $sync 'lastSuccess')
        LastSyncError           = $syncErrorText
        CredentialThumbprint    = Get-CertAgentValue $credential 'thumbprint'
        CredentialNotAfter      = ConvertTo-CertAgentDateTime (Get-CertAgentValue $credential 'notAfter')
        CredentialDaysRemaining = Get-CertAgentValue $credential 'daysRemaining'
        DropFolder              = Get-CertAgentValue $InputObject 'dropFolder'
        Approval                = Get-CertAgentValue $InputObject 'approval'
        Version                 = Get-CertAgentValue $InputObject 'version'
        StartedAt               = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'startedAt')
        Uptime                  = $uptime
        Targets                 = $targets
        BaseUri                 = $BaseUri
    }
}

function ConvertTo-CertAgentCertificate {
    <#
    .SYNOPSIS
    One certificate credential of the target app (API Certificate).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [object] $InputObject,

        [AllowNull()]
        [object] $SyncedAt
    )

    return [pscustomobject]@{
        PSTypeName    = 'CertAgent.Certificate'
        Target        = Get-CertAgentValue $InputObject 'target'
        Thumbprint    = Get-CertAgentValue $InputObject 'thumbprint'
        DisplayName   = Get-CertAgentValue $InputObject 'displayName'
        StartDateTime = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'startDateTime')
        EndDateTime   = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'endDateTime')
        DaysRemaining = Get-CertAgentValue $InputObject 'daysRemaining'
        AddedByAgent  = [bool] (Get-CertAgentValue $InputObject 'addedByAgent')
        KeyId         = Get-CertAgentValue $InputObject 'keyId'
        RotationId    = Get-CertAgentValue $InputObject 'rotationId'
        SyncedAt      = ConvertTo-CertAgentDateTime $SyncedAt
    }
}

function ConvertTo-CertAgentRotation {
    <#
    .SYNOPSIS
    One rotation: the life of one provider certificate (API Rotation).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [object] $InputObject
    )

    $facts = ConvertTo-CertAgentCertificateFacts (Get-CertAgentValue $InputObject 'certificate')
    $source = Get-CertAgentValue $InputObject 'source'
    $target = Get-CertAgentValue $InputObject 'target'
    $reason = Get-CertAgentValue $InputObject 'reason'
    $history = @(
        foreach ($e in @(ConvertTo-CertAgentArray (Get-CertAgentValue $InputObject 'history'))) {
            [pscustomobject]@{
                PSTypeName = 'CertAgent.RotationEvent'
                At         = ConvertTo-CertAgentDateTime (Get-CertAgentValue $e 'at')
                State      = Get-CertAgentValue $e 'state'
                Actor      = Get-CertAgentValue $e 'actor'
                Note       = Get-CertAgentValue $e 'note'
            }
        }
    )
    return [pscustomobject]@{
        PSTypeName        = 'CertAgent.Rotation'
        Id                = Get-CertAgentValue $InputObject 'id'
        State             = Get-CertAgentValue $InputObject 'state'
        Subject           = Get-CertAgentValue $facts 'Subject'
        Thumbprint        = Get-CertAgentValue $facts 'Thumbprint'
        NotAfter          = Get-CertAgentValue $facts 'NotAfter'
        Certificate       = $facts
        Source            = Get-CertAgentValue $source 'kind'
        FileName          = Get-CertAgentValue $source 'fileName'
        ArchivedAs        = Get-CertAgentValue $source 'archivedAs'
        SourceUrl         = Get-CertAgentValue $source 'url'
        SignedBy          = Get-CertAgentValue $source 'signedBy'
        Target            = Get-CertAgentValue $target 'name'
        TargetAppId       = Get-CertAgentValue $target 'appId'
        TargetDisplayName = Get-CertAgentValue $target 'displayName'
        KeyId             = Get-CertAgentValue $InputObject 'keyId'
        AlreadyPresent    = [bool] (Get-CertAgentValue $InputObject 'alreadyPresent')
        ReasonCode        = Get-CertAgentValue $reason 'code'
        ReasonMessage     = Get-CertAgentValue $reason 'message'
        History           = $history
        CreatedAt         = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'createdAt')
        UpdatedAt         = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'updatedAt')
    }
}

function ConvertTo-CertAgentAuditEntry {
    <#
    .SYNOPSIS
    One record of the audit log (API AuditEntry).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [object] $InputObject
    )

    $facts = ConvertTo-CertAgentCertificateFacts (Get-CertAgentValue $InputObject 'certificate')
    return [pscustomobject]@{
        PSTypeName  = 'CertAgent.AuditEntry'
        Seq         = Get-CertAgentValue $InputObject 'seq'
        At          = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'at')
        Action      = Get-CertAgentValue $InputObject 'action'
        Actor       = Get-CertAgentValue $InputObject 'actor'
        Outcome     = Get-CertAgentValue $InputObject 'outcome'
        RotationId  = Get-CertAgentValue $InputObject 'rotationId'
        State       = Get-CertAgentValue $InputObject 'state'
        File        = Get-CertAgentValue $InputObject 'file'
        KeyId       = Get-CertAgentValue $InputObject 'keyId'
        Thumbprint  = Get-CertAgentValue $facts 'Thumbprint'
        Certificate = $facts
        Code        = Get-CertAgentValue $InputObject 'code'
        Message     = Get-CertAgentValue $InputObject 'message'
    }
}

function ConvertTo-CertAgentCredential {
    <#
    .SYNOPSIS
    The agent's own sign-in credential (API Credential).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [object] $InputObject
    )

    return [pscustomobject]@{
        PSTypeName    = 'CertAgent.Credential'
        Method        = Get-CertAgentValue $InputObject 'method'
        ClientId      = Get-CertAgentValue $InputObject 'clientId'
        Thumbprint    = Get-CertAgentValue $InputObject 'thumbprint'
        Subject       = Get-CertAgentValue $InputObject 'subject'
        NotBefore     = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'notBefore')
        NotAfter      = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'notAfter')
        NextRenewal   = ConvertTo-CertAgentDateTime (Get-CertAgentValue $InputObject 'nextRenewal')
        DaysRemaining = Get-CertAgentValue $InputObject 'daysRemaining'
    }
}

function New-CertAgentVerdict {
    <#
    .SYNOPSIS
    One file's verdict, from Submit-CertAgentCertificate (Source api, or local for a file the
    module refuses without sending it) or Test-CertAgentCertificate (Source inspect).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)]
        [string] $Path,

        [Parameter(Mandatory = $true)]
        [ValidateSet('accepted', 'rejected')]
        [string] $Verdict,

        [string] $Code,

        [string] $Message,

        [AllowNull()]
        [object] $Certificate,

        [AllowNull()]
        [object] $Rotation,

        [AllowNull()]
        [object] $Created,

        [Parameter(Mandatory = $true)]
        [ValidateSet('api', 'inspect', 'local')]
        [string] $Source
    )

    $facts = $Certificate
    if ($null -eq $facts -and $null -ne $Rotation) {
        $facts = $Rotation.Certificate
    }
    $codeValue = $null
    if (-not [string]::IsNullOrEmpty($Code)) {
        $codeValue = $Code
    }
    return [pscustomobject]@{
        PSTypeName  = 'CertAgent.Verdict'
        FileName    = [System.IO.Path]::GetFileName($Path)
        Verdict     = $Verdict
        Accepted    = ($Verdict -eq 'accepted')
        Code        = $codeValue
        Message     = $Message
        RotationId  = Get-CertAgentValue $Rotation 'Id'
        State       = Get-CertAgentValue $Rotation 'State'
        Created     = $Created
        Thumbprint  = Get-CertAgentValue $facts 'Thumbprint'
        Subject     = Get-CertAgentValue $facts 'Subject'
        NotAfter    = Get-CertAgentValue $facts 'NotAfter'
        Certificate = $facts
        Rotation    = $Rotation
        Path        = $Path
        Source      = $Source
    }
}

function ConvertTo-CertAgentSubmission {
    <#
    .SYNOPSIS
    Returns a certificate file's content as the "certificate" string of POST
    /api/v1/rotations: a text file (PEM, bare base64; UTF-8, a BOM dropped) as it is, a binary
    file (DER) as the base64 of its bytes. The same for a signature file's "signature".
    -KeepByteOrderMark keeps a UTF-8 BOM as the text's first character, so that the string's
    UTF-8 bytes are the file's exact bytes (what a signature covers).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory = $true)]
        [byte[]] $Bytes,

        [switch] $KeepByteOrderMark
    )

    $offset = 0
    if (-not $KeepByteOrderMark -and $Bytes.Length -ge 3 -and $Bytes[0] -eq 0xEF -and $Bytes[1] -eq 0xBB -and $Bytes[2] -eq 0xBF) {
        $offset = 3
    }
    $strict = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList @($false, $true)
    $text = $null
    try {
        $text = $strict.GetString($Bytes, $offset, $Bytes.Length - $offset)
    } catch {
        $text = $null
    }
    if ($null -ne $text -and $text.Trim().Length -gt 0 -and $text -notmatch '[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]') {
        return $text
    }
    return [System.Convert]::ToBase64String($Bytes)
}
