function Get-BrokenBrace {
    <#
    .SYNOPSIS
    Fixture: a missing closing brace.
    .DESCRIPTION
    The if block below is never closed.
    .EXAMPLE
    Get-BrokenBrace
    #>
    [CmdletBinding()]
    param()

    if ($true) {
        [pscustomobject]@{ PSTypeName = 'Broken.Thing'; Name = 'x' }
}
