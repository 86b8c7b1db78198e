function Approve-BrokenRotation {
    <#
    .SYNOPSIS
    Fixture: a write route without ShouldProcess; a body property the API does not take;
    a parameter the called function does not have.
    .DESCRIPTION
    Calls POST /api/v1/rotations/{id}/approve.
    .PARAMETER Id
    A rotation id.
    .EXAMPLE
    Approve-BrokenRotation -Id x
    #>
    [CmdletBinding()]
    param(
        [string] $Id
    )

    $c = 'http://127.0.0.1:8471'
    Invoke-CertAgentApi -Connection $c -Method 'POST' -Path '/api/v1/rotations/{id}/approve' -PathParameter @{ id = $Id } -Body @{ notes = 'x' } -Retry 3
    [pscustomobject]@{ PSTypeName = 'Broken.Thing'; Name = $Id }
}
