# CertAgent module: loads the private helpers and the public commands (one file each under
# Public\, named after the command) and exports the public ones. Windows PowerShell 5.1 and
# PowerShell 7: no syntax newer than 5.1 anywhere in the module (`make test-powershell` checks).

# The session's connection, set by Connect-CertAgent; $null means "the installed agent's
# defaults, resolved on each call".
$script:CertAgentSession = $null

$privateFiles = @(Get-ChildItem -Path (Join-Path -Path $PSScriptRoot -ChildPath 'Private') -Filter '*.ps1' -File)
$publicFiles = @(Get-ChildItem -Path (Join-Path -Path $PSScriptRoot -ChildPath 'Public') -Filter '*.ps1' -File)

foreach ($file in @($privateFiles + $publicFiles)) {
    try {
        . $file.FullName
    } catch {
        throw ('CertAgent: loading {0}: {1}' -f $file.FullName, $_.Exception.Message)
    }
}

Export-ModuleMember -Function @($publicFiles | ForEach-Object { $_.BaseName })
