function Fetch-BrokenThing {
    <#
    .SYNOPSIS
    Fixture: Fetch is not an approved verb; help misses a .PARAMETER and names a wrong one.
    .DESCRIPTION
    Also reads a variable it never assigns.
    .PARAMETER Nmae
    Misspelt.
    .EXAMPLE
    Fetch-BrokenThing -Name x
    #>
    [CmdletBinding()]
    param(
        [string] $Name
    )

    $result = $Name
    $reslut
}
