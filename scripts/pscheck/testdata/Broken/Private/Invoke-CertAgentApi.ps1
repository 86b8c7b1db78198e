# Fixture: a stand-in for the real helper (only its parameters matter to the checker).
function Invoke-CertAgentApi {
    [CmdletBinding()]
    param(
        [object] $Connection,
        [string] $Method,
        [string] $Path,
        [hashtable] $PathParameter,
        [hashtable] $Query,
        [hashtable] $Body
    )
    Invoke-RestMethod -Uri ($Connection + $Path) -Method $Method
}
