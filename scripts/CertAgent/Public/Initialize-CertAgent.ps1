function Initialize-CertAgent {
    <#
    .SYNOPSIS
    Does the one-time tenant work for the agent: runs `certagent setup`.

    .DESCRIPTION
    Runs `certagent setup` (certagent.exe on Windows) in this console, with the parameters
    passed through: it signs you in (a device code to enter at a Microsoft URL, or -UseAz to
    reuse an Azure CLI login), finds the provider's app registration, creates or reuses the
    agent's app with Application.ReadWrite.OwnedBy, makes the agent an owner of the
    provider's app, creates the agent's key pair and writes the agent's config. Run it once,
    elevated, as an admin who may grant that permission; running it again only fills gaps.
    -DryRun prints each step (as Graph calls, az CLI and Microsoft Graph PowerShell commands)
    and changes nothing.

    The program is found as for Test-CertAgentCertificate (-ExePath, the registry's
    InstallDir, %ProgramFiles%\CertAgent, PATH). A non-zero exit code is a terminating error
    (setup_failed).

    .PARAMETER Tenant
    The tenant: its id (a GUID) or a verified domain (--tenant).

    .PARAMETER ProviderApp
    The provider's app registration: its display name or app id (--provider-app).

    .PARAMETER AgentName
    Display name of the agent's own app registration (--agent-name).

    .PARAMETER Yes
    Answer yes to every question; refuse instead of asking when a choice is needed (--yes).

    .PARAMETER DryRun
    Print what would be done and change nothing (--dry-run).

    .PARAMETER UseAz
    Sign in with the Azure CLI's login instead of a device code (--use-az).

    .PARAMETER ConfigFile
    The config to write (-c). Default: the agent's default config path.

    .PARAMETER ExePath
    The certagent program to run.

    .EXAMPLE
    Initialize-CertAgent -Tenant contoso.onmicrosoft.com -ProviderApp 'Veeam Backup for Microsoft 365'

    .EXAMPLE
    Initialize-CertAgent -Tenant contoso.onmicrosoft.com -DryRun

    Shows every step for review; changes nothing.

    .EXAMPLE
    Initialize-CertAgent -Tenant contoso.onmicrosoft.com -UseAz -Yes -WhatIf

    Shows the command line it would run.

    .LINK
    about_CertAgent
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Medium')]
    param(
        [string] $Tenant,

        [string] $ProviderApp,

        [string] $AgentName,

        [switch] $Yes,

        [switch] $DryRun,

        [switch] $UseAz,

        [string] $ConfigFile,

        [string] $ExePath
    )

    try {
        $exe = Find-CertAgentExe -ExePath $ExePath
        $arguments = @('setup')
        if ($ConfigFile) {
            $arguments += @('-c', $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($ConfigFile))
        }
        if ($Tenant) {
            $arguments += @('--tenant', $Tenant)
        }
        if ($ProviderApp) {
            $arguments += @('--provider-app', $ProviderApp)
        }
        if ($AgentName) {
            $arguments += @('--agent-name', $AgentName)
        }
        if ($Yes) {
            $arguments += '--yes'
        }
        if ($DryRun) {
            $arguments += '--dry-run'
        }
        if ($UseAz) {
            $arguments += '--use-az'
        }
        $target = 'tenant'
        if ($Tenant) {
            $target = 'tenant ' + $Tenant
        }
        $commandLine = '{0} {1}' -f $exe, (ConvertTo-CertAgentArgumentString -ArgumentList $arguments)
        if (-not $PSCmdlet.ShouldProcess($target, "Run $commandLine")) {
            return
        }
        $result = Invoke-CertAgentExe -FilePath $exe -ArgumentList $arguments -Interactive
        if ($result.ExitCode -ne 0) {
            throw (New-CertAgentErrorRecord -ErrorId 'setup_failed' -Category NotSpecified -TargetObject $commandLine `
                    -Message ('certagent setup failed (exit code {0}); its messages are above' -f $result.ExitCode))
        }
    } catch {
        $PSCmdlet.ThrowTerminatingError($_)
    }
}
