function Get-BrokenSeven {
    <#
    .SYNOPSIS
    Fixture: PowerShell 7-only constructs.
    .DESCRIPTION
    Each line below works in PowerShell 7 and not in Windows PowerShell 5.1.
    .PARAMETER Name
    A name.
    .EXAMPLE
    Get-BrokenSeven -Name x
    #>
    [CmdletBinding()]
    param(
        [string] $Name
    )

    $a = $Name ?? 'none'
    $b = $Name ? 'yes' : 'no'
    $c = $Name?.Length
    $d = $null
    $d ??= 1
    Get-Item -Path $a && Get-Item -Path $b
    Get-Item -Path $c || Get-Item -Path $d
    1..3 | ForEach-Object -Parallel { $_ }
    $e = Get-Content -Path $a -AsByteStream
    $e | ConvertFrom-Json -AsHashtable
}
