# Running certagent(.exe) itself: Test-CertAgentCertificate (`certagent inspect --json`) and
# Initialize-CertAgent (`certagent setup`), and resolving file paths given to commands.

function Find-CertAgentExe {
    <#
    .SYNOPSIS
    Returns the path of certagent.exe (certagent off Windows): -ExePath, Connect-CertAgent's
    -ExePath, the registry's InstallDir, %ProgramFiles%\CertAgent, the repository's bin\ (for
    a module run from a checkout), then PATH.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [string] $ExePath
    )

    if (-not [string]::IsNullOrEmpty($ExePath)) {
        if (-not (Test-Path -LiteralPath $ExePath -PathType Leaf)) {
            throw (New-CertAgentErrorRecord -ErrorId 'certagent_not_found' -Category ObjectNotFound -TargetObject $ExePath `
                    -Message ('{0} does not exist' -f $ExePath))
        }
        return (Resolve-Path -LiteralPath $ExePath).ProviderPath
    }

    $name = 'certagent'
    if (Test-CertAgentWindows) {
        $name = 'certagent.exe'
    }
    $candidates = @()
    if ($null -ne $script:CertAgentSession -and $script:CertAgentSession.ExePath) {
        $candidates += $script:CertAgentSession.ExePath
    }
    $registry = Get-CertAgentRegistry
    if ($registry['InstallDir']) {
        $candidates += (Join-Path -Path $registry['InstallDir'] -ChildPath $name)
    }
    if ((Test-CertAgentWindows) -and $env:ProgramFiles) {
        $candidates += (Join-Path -Path (Join-Path -Path $env:ProgramFiles -ChildPath 'CertAgent') -ChildPath $name)
    }
    # A module loaded from a checkout (scripts/CertAgent) uses the binary `make build` wrote.
    $moduleBase = Split-Path -Path $PSScriptRoot -Parent
    $candidates += (Join-Path -Path $moduleBase -ChildPath $name)
    $candidates += (Join-Path -Path (Join-Path -Path (Split-Path -Path (Split-Path -Path $moduleBase -Parent) -Parent) -ChildPath 'bin') -ChildPath $name)
    foreach ($candidate in $candidates) {
        if (Test-Path -LiteralPath $candidate -PathType Leaf) {
            return $candidate
        }
    }
    $command = Get-Command -Name 'certagent' -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($null -ne $command) {
        return $command.Path
    }
    throw (New-CertAgentErrorRecord -ErrorId 'certagent_not_found' -Category ObjectNotFound -TargetObject $name `
            -Message ('cannot find {0}: looked in {1} and on PATH; pass -ExePath' -f $name, ($candidates -join ', ')))
}

function ConvertTo-CertAgentArgumentString {
    <#
    .SYNOPSIS
    Joins arguments into one command line, quoted as the Microsoft C runtime and Go (and .NET
    on Linux) split it again.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [AllowEmptyCollection()]
        [string[]] $ArgumentList
    )

    $parts = @()
    foreach ($arg in @($ArgumentList)) {
        if ($arg.Length -gt 0 -and $arg -notmatch '[\s"]') {
            $parts += $arg
            continue
        }
        $sb = New-Object -TypeName System.Text.StringBuilder
        [void] $sb.Append([char] 34)
        $backslashes = 0
        foreach ($ch in $arg.ToCharArray()) {
            if ($ch -eq [char] 92) {
                $backslashes++
            } elseif ($ch -eq [char] 34) {
                [void] $sb.Append([char] 92, 2 * $backslashes + 1)
                [void] $sb.Append([char] 34)
                $backslashes = 0
            } else {
                if ($backslashes -gt 0) {
                    [void] $sb.Append([char] 92, $backslashes)
                }
                $backslashes = 0
                [void] $sb.Append($ch)
            }
        }
        if ($backslashes -gt 0) {
            [void] $sb.Append([char] 92, 2 * $backslashes)
        }
        [void] $sb.Append([char] 34)
        $parts += $sb.ToString()
    }
    return ($parts -join ' ')
}

function Invoke-CertAgentExe {
    <#
    .SYNOPSIS
    Runs certagent with arguments. Returns ExitCode, Output (standard output as lines, read
    as UTF-8) and ErrorText; with -Interactive the program uses this console (its prompts,
    the device code of `setup`) and only ExitCode is returned.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)]
        [string] $FilePath,

        [AllowEmptyCollection()]
        [string[]] $ArgumentList = @(),

        [switch] $Interactive
    )

    $info = New-Object -TypeName System.Diagnostics.ProcessStartInfo
    $info.FileName = $FilePath
    $info.Arguments = ConvertTo-CertAgentArgumentString -ArgumentList $ArgumentList
    $info.UseShellExecute = $false
    # .NET's current directory is not PowerShell's location: relative paths mean the latter.
    $location = Get-Location -PSProvider FileSystem
    if ($null -ne $location) {
        $info.WorkingDirectory = $location.ProviderPath
    }
    if (-not $Interactive) {
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $info.StandardOutputEncoding = [System.Text.Encoding]::UTF8
        $info.StandardErrorEncoding = [System.Text.Encoding]::UTF8
        $info.CreateNoWindow = $true
    }
    Write-Verbose ('CertAgent: running {0} {1}' -f $FilePath, $info.Arguments)
    $process = [System.Diagnostics.Process]::Start($info)
    try {
        if ($Interactive) {
            $process.WaitForExit()
            return [pscustomobject]@{
                ExitCode  = $process.ExitCode
                Output    = @()
                ErrorText = ''
            }
        }
        # Read standard error in the background so that neither pipe fills up.
        $errorTask = $process.StandardError.ReadToEndAsync()
        $out = $process.StandardOutput.ReadToEnd()
        $process.WaitForExit()
        $errorText = $errorTask.Result
        $lines = @($out -split '\r?\n' | Where-Object { $_.Trim().Length -gt 0 })
        return [pscustomobject]@{
            ExitCode  = $process.ExitCode
            Output    = $lines
            ErrorText = $errorText
        }
    } finally {
        $process.Dispose()
    }
}

function Resolve-CertAgentFilePath {
    <#
    .SYNOPSIS
    Returns the file-system paths a -Path (wildcards) or -LiteralPath names; throws when
    nothing matches or the path is not on the file system.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory = $true)]
        [string] $Path,

        [switch] $Literal
    )

    if ($Literal) {
        $resolved = @(Resolve-Path -LiteralPath $Path -ErrorAction Stop)
    } else {
        $resolved = @(Resolve-Path -Path $Path -ErrorAction Stop)
    }
    foreach ($item in $resolved) {
        if ($item.Provider.Name -ne 'FileSystem') {
            throw (New-CertAgentErrorRecord -ErrorId 'not_a_file_path' -Category InvalidArgument -TargetObject $Path `
                    -Message ('{0} is not a file-system path' -f $Path))
        }
        $item.ProviderPath
    }
}
