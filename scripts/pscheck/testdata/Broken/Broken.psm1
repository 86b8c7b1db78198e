# Fixture: loads the broken module's files.
foreach ($file in @(Get-ChildItem -Path (Join-Path -Path $PSScriptRoot -ChildPath 'Public') -Filter '*.ps1')) {
    . $file.FullName
}
