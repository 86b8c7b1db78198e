function Test-CertAgentCertificate {
    <#
    .SYNOPSIS
    Gives the verdict the agent would give certificate files, without submitting them.

    .DESCRIPTION
    The API has no "check only" route, so this command runs the agent's program itself:
    `certagent inspect --json [-c CONFIG] FILE...` (certagent.exe on Windows), and turns each
    JSON line it prints into a CertAgent.Verdict (Source inspect): accepted, or rejected with
    the same stable Code the agent and Submit-CertAgentCertificate give. Nothing is sent to
    the agent and nothing changes.

    The program is found from -ExePath, Connect-CertAgent -ExePath, InstallDir under
    HKLM:\SOFTWARE\CertAgent, %ProgramFiles%\CertAgent, the module's repository (bin\), then
    PATH. The policy is the installed agent's config (so allow-lists and minimum validity
    match), or the built-in default policy with -DefaultPolicy or when the config cannot be
    read (a warning says so).

    .PARAMETER Path
    Files to check; wildcards allowed.

    .PARAMETER LiteralPath
    Files to check, taken as written; Get-ChildItem's output binds here.

    .PARAMETER ConfigFile
    The config whose policy applies. Default: Connect-CertAgent's, else the installed agent's.

    .PARAMETER DefaultPolicy
    Use the built-in default policy, not the agent's config.

    .PARAMETER ExePath
    The certagent program to run.

    .EXAMPLE
    Test-CertAgentCertificate .\provider-2027.cer

    .EXAMPLE
    Get-ChildItem C:\Incoming -Filter *.cer | Test-CertAgentCertificate | Format-Table FileName, Verdict, Code, NotAfter

    .EXAMPLE
    if ((Test-CertAgentCertificate .\new.cer).Accepted) { Submit-CertAgentCertificate .\new.cer }

    .OUTPUTS
    CertAgent.Verdict

    .LINK
    Submit-CertAgentCertificate
    #>
    [CmdletBinding(DefaultParameterSetName = 'Path')]
    [OutputType('CertAgent.Verdict')]
    param(
        [Parameter(Mandatory = $true, Position = 0, ParameterSetName = 'Path', ValueFromPipeline = $true)]
        [ValidateNotNullOrEmpty()]
        [string[]] $Path,

        [Parameter(Mandatory = $true, ParameterSetName = 'LiteralPath', ValueFromPipelineByPropertyName = $true)]
        [Alias('PSPath', 'FullName')]
        [ValidateNotNullOrEmpty()]
        [string[]] $LiteralPath,

        [string] $ConfigFile,

        [switch] $DefaultPolicy,

        [string] $ExePath
    )

    begin {
        $files = New-Object -TypeName 'System.Collections.Generic.List[string]'
    }

    process {
        $literal = ($PSCmdlet.ParameterSetName -eq 'LiteralPath')
        $given = $Path
        if ($literal) {
            $given = $LiteralPath
        }
        foreach ($p in $given) {
            try {
                foreach ($file in @(Resolve-CertAgentFilePath -Path $p -Literal:$literal)) {
                    $files.Add($file)
                }
            } catch {
                $PSCmdlet.WriteError($_)
            }
        }
    }

    end {
        if ($files.Count -eq 0) {
            return
        }
        try {
            $exe = Find-CertAgentExe -ExePath $ExePath
            $policyArgs = @()
            if (-not $DefaultPolicy) {
                $config = $ConfigFile
                if ([string]::IsNullOrEmpty($config) -and $null -ne $script:CertAgentSession) {
                    $config = $script:CertAgentSession.ConfigFile
                }
                if ([string]::IsNullOrEmpty($config)) {
                    $config = (Get-CertAgentInstalledConnection).ConfigFile
                }
                $config = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($config)
                $readable = $false
                try {
                    $stream = [System.IO.File]::OpenRead($config)
                    $stream.Dispose()
                    $readable = $true
                } catch {
                    Write-Warning ('CertAgent: cannot read the agent config {0} ({1}); using the default policy. Run elevated (as root off Windows) for the agent''s own policy.' -f $config, $_.Exception.Message)
                }
                if ($readable) {
                    $policyArgs = @('-c', $config)
                }
            }

            # A batch at a time keeps the command line well under Windows' 32767 characters.
            $batchSize = 50
            for ($start = 0; $start -lt $files.Count; $start += $batchSize) {
                $count = [Math]::Min($batchSize, $files.Count - $start)
                $batch = $files.GetRange($start, $count).ToArray()
                $arguments = @('inspect', '--json') + $policyArgs + $batch
                $result = Invoke-CertAgentExe -FilePath $exe -ArgumentList $arguments
                $lines = @($result.Output | Where-Object { $_.TrimStart().StartsWith('{') })
                if (($result.ExitCode -ne 0 -and $result.ExitCode -ne 1) -or $lines.Count -ne $batch.Count) {
                    $detail = ([string] $result.ErrorText).Trim()
                    if ($detail.Length -eq 0) {
                        $detail = 'no message'
                    }
                    throw (New-CertAgentErrorRecord -ErrorId 'inspect_failed' -Category InvalidResult -TargetObject $exe `
                            -Message ('{0} inspect failed (exit code {1}): {2}' -f $exe, $result.ExitCode, $detail))
                }
                foreach ($line in $lines) {
                    $item = ConvertFrom-Json -InputObject $line
                    $reason = Get-CertAgentValue $item 'reason'
                    $verdict = 'accepted'
                    if ((Get-CertAgentValue $item 'verdict') -eq 'rejected') {
                        $verdict = 'rejected'
                    }
                    $message = Get-CertAgentValue $reason 'message'
                    if ($verdict -eq 'accepted') {
                        $message = 'the agent would accept it'
                    }
                    New-CertAgentVerdict -Path ([string] (Get-CertAgentValue $item 'file')) -Verdict $verdict `
                        -Code ([string] (Get-CertAgentValue $reason 'code')) -Message $message `
                        -Certificate (ConvertTo-CertAgentCertificateFacts (Get-CertAgentValue $item 'certificate')) -Source 'inspect'
                }
            }
        } catch {
            $PSCmdlet.ThrowTerminatingError($_)
        }
    }
}
