function Get-BrokenRoute {
    <#
    .SYNOPSIS
    Fixture: API calls the OpenAPI document does not have.
    .DESCRIPTION
    An unknown path, a wrong method, a missing path parameter, an unknown query parameter,
    an unknown body property, a path that is not a literal, and a direct Invoke-RestMethod.
    .PARAMETER Id
    A rotation id.
    .EXAMPLE
    Get-BrokenRoute -Id x
    #>
    [CmdletBinding()]
    param(
        [string] $Id
    )

    $c = 'http://127.0.0.1:8471'
    Invoke-CertAgentApi -Connection $c -Method 'GET' -Path '/api/v1/nothing'
    Invoke-CertAgentApi -Connection $c -Method 'POST' -Path '/api/v1/status'
    Invoke-CertAgentApi -Connection $c -Method 'GET' -Path '/api/v1/rotations/{id}'
    $query = @{ page = 2 }
    Invoke-CertAgentApi -Connection $c -Method 'GET' -Path '/api/v1/audit' -Query $query
    Invoke-CertAgentApi -Connection $c -Method 'GET' -Path "/api/v1/rotations/$Id"
    Invoke-RestMethod -Uri "$c/api/v1/status"
    Get-CertAgentThing -Id $Id
}
