function Get-BrokenHelp {
    # Fixture: no comment-based help, a parameter, and not in FunctionsToExport.
    [CmdletBinding()]
    param(
        [string] $Name
    )

    $Name
}
