# Fixture for the pscheck self-test: a module of deliberately broken files. Each finding
# the checker must report is listed in expect.txt; nothing else may come out.
@{
    RootModule           = 'Broken.psm1'
    ModuleVersion        = '0.0.0'
    GUID                 = '00000000-1111-2222-3333-444444444444'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FormatsToProcess     = @('Broken.Format.ps1xml')
    # Lists Get-Missing (no such function) and leaves out Get-BrokenHelp.
    FunctionsToExport    = @(
        'Approve-BrokenRotation',
        'Fetch-BrokenThing',
        'Get-BrokenBrace',
        'Get-BrokenRoute',
        'Get-BrokenSeven',
        'Get-Missing'
    )
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = '*'
}
