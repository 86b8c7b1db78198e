# Small helpers shared by the whole module: error records, the OS, optional JSON values and
# times.

function Test-CertAgentWindows {
    <#
    .SYNOPSIS
    Reports whether this PowerShell runs on Windows ($IsWindows does not exist in 5.1).
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param()

    return ([System.Environment]::OSVersion.Platform -eq [System.PlatformID]::Win32NT)
}

function New-CertAgentErrorRecord {
    <#
    .SYNOPSIS
    Builds the ErrorRecord of a CertAgent error: ErrorId is the stable code, the exception's
    Data holds Code (and whatever Data adds), CategoryInfo.Reason is the code too.
    #>
    [CmdletBinding()]
    [OutputType([System.Management.Automation.ErrorRecord])]
    param(
        [Parameter(Mandatory = $true)]
        [string] $ErrorId,

        [Parameter(Mandatory = $true)]
        [string] $Message,

        [System.Management.Automation.ErrorCategory] $Category = [System.Management.Automation.ErrorCategory]::NotSpecified,

        [object] $TargetObject,

        [System.Exception] $InnerException,

        [string] $RecommendedAction,

        [hashtable] $Data
    )

    $exception = New-Object -TypeName System.Exception -ArgumentList @($Message, $InnerException)
    $exception.Data['Code'] = $ErrorId
    if ($null -ne $Data) {
        foreach ($key in @($Data.Keys)) {
            $exception.Data[$key] = $Data[$key]
        }
    }
    $record = New-Object -TypeName System.Management.Automation.ErrorRecord -ArgumentList @($exception, $ErrorId, $Category, $TargetObject)
    $record.CategoryInfo.Reason = $ErrorId
    if ($RecommendedAction) {
        $record.ErrorDetails = New-Object -TypeName System.Management.Automation.ErrorDetails -ArgumentList @($Message)
        $record.ErrorDetails.RecommendedAction = $RecommendedAction
    }
    return $record
}

function Get-CertAgentValue {
    <#
    .SYNOPSIS
    Returns the property Name of a parsed JSON object, or $null when the object or the
    property is missing (optional API fields are left out of the JSON).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [AllowNull()]
        [object] $InputObject,

        [Parameter(Mandatory = $true, Position = 1)]
        [string] $Name
    )

    if ($null -eq $InputObject) {
        return $null
    }
    if ($InputObject -is [System.Collections.IDictionary]) {
        return $InputObject[$Name]
    }
    $property = $InputObject.PSObject.Properties[$Name]
    if ($null -eq $property) {
        return $null
    }
    return $property.Value
}

function ConvertTo-CertAgentDateTime {
    <#
    .SYNOPSIS
    Turns an RFC 3339 time of the API into a [datetime] in local time, or $null.
    .DESCRIPTION
    Windows PowerShell 5.1's ConvertFrom-Json leaves times as strings; PowerShell 7 already
    makes [datetime] values of them (in UTC or local time depending on the version). Either
    way the result is a local [datetime], as Get-Date gives.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [AllowNull()]
        [object] $Value
    )

    if ($null -eq $Value) {
        return $null
    }
    if ($Value -is [datetime]) {
        $time = [datetime] $Value
    } elseif ($Value -is [System.DateTimeOffset]) {
        return ([System.DateTimeOffset] $Value).LocalDateTime
    } else {
        $text = [string] $Value
        if ([string]::IsNullOrEmpty($text)) {
            return $null
        }
        $styles = [System.Globalization.DateTimeStyles]::AdjustToUniversal -bor [System.Globalization.DateTimeStyles]::AssumeUniversal
        $time = [datetime]::Parse($text, [System.Globalization.CultureInfo]::InvariantCulture, $styles)
        $time = [datetime]::SpecifyKind($time, [System.DateTimeKind]::Utc)
    }
    if ($time.Kind -eq [System.DateTimeKind]::Unspecified) {
        $time = [datetime]::SpecifyKind($time, [System.DateTimeKind]::Utc)
    }
    return $time.ToLocalTime()
}

function ConvertTo-CertAgentArray {
    <#
    .SYNOPSIS
    Returns a JSON array value as an array: empty for $null, never $null itself.
    .DESCRIPTION
    Use it as @(ConvertTo-CertAgentArray $x): Windows PowerShell 5.1's ConvertFrom-Json and
    @($null) (one $null element) both need this care.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [AllowNull()]
        [object] $Value
    )

    if ($null -eq $Value) {
        return
    }
    foreach ($item in @($Value)) {
        if ($null -ne $item) {
            $item
        }
    }
}
