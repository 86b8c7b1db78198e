#
# Module manifest of CertAgent: the PowerShell face of certagent's local REST API.
#
# ModuleVersion stays '0.0.0' in the repository: `make ps-module` writes a copy to
# dist/CertAgent/ with the build's version stamped in (the MSI ships that copy).
# The GUID never changes.
#
@{
    RootModule           = 'CertAgent.psm1'
    ModuleVersion        = '0.0.0'
    GUID                 = 'b31c6b77-6287-46a3-bb34-acaec0cb63fa'
    Author               = 'AUCloud'
    CompanyName          = 'AUCloud'
    Copyright            = '(c) AUCloud. All rights reserved.'
    Description          = 'Drives certagent, the agent that puts a Microsoft 365 backup provider''s yearly certificate on an Entra ID app registration: status, certificates, rotations (approve, deny, confirm, retry), submissions, the audit log and the agent''s own credential, as PowerShell objects.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FormatsToProcess     = @('CertAgent.Format.ps1xml')
    FunctionsToExport    = @(
        'Approve-CertAgentRotation',
        'Confirm-CertAgentRotation',
        'Connect-CertAgent',
        'Deny-CertAgentRotation',
        'Get-CertAgentAuditLog',
        'Get-CertAgentCertificate',
        'Get-CertAgentCredential',
        'Get-CertAgentRotation',
        'Get-CertAgentStatus',
        'Initialize-CertAgent',
        'Redo-CertAgentRotation',
        'Remove-CertAgentCertificate',
        'Start-CertAgentScan',
        'Submit-CertAgentCertificate',
        'Test-CertAgentCertificate',
        'Update-CertAgentCredential'
    )
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('certagent', 'EntraID', 'AzureAD', 'Certificate', 'Microsoft365', 'Backup', 'Windows', 'Linux')
            ProjectUri   = 'https://github.com/aucloud/certagent'
            ReleaseNotes = 'See the certagent README, section PowerShell.'
        }
    }
}
