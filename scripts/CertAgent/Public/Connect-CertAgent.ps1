function Connect-CertAgent {
    <#
    .SYNOPSIS
    Chooses the agent the other CertAgent commands talk to in this session, and checks that
    it answers.

    .DESCRIPTION
    Without parameters every command finds the installed agent by itself: its config file
    (HKLM:\SOFTWARE\CertAgent ConfigFile, else %ProgramData%\CertAgent\certagent.yaml; on
    Linux /etc/certagent/certagent.yaml) gives api.listen and the token file (api.token_file,
    else <state_dir>/api.token); when the config cannot be read, the registry's ApiUrl,
    ApiPort and TokenFile values, then http://127.0.0.1:8471 and
    %ProgramData%\CertAgent\state\api.token (/var/lib/certagent/api.token).

    Connect-CertAgent fixes these for the session: give another agent's config (-ConfigFile,
    for example a `certagent dev` folder's certagent.yaml), or -BaseUri with -TokenPath or
    -Token. It reads the token and asks the agent's status to check both (unless -SkipCheck),
    and returns a CertAgent.Connection. Run it again without parameters to go back to the
    installed agent. A command's own -BaseUri, -TokenPath and -Token still win.

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471.

    .PARAMETER TokenPath
    The agent's API token file.

    .PARAMETER Token
    The API token itself (a SecureString), instead of a token file.

    .PARAMETER ConfigFile
    An agent config (certagent.yaml) to take the API address, the token file and the policy
    (Test-CertAgentCertificate) from.

    .PARAMETER ExePath
    The certagent program for Test-CertAgentCertificate and Initialize-CertAgent.

    .PARAMETER SkipCheck
    Do not read the token or ask the agent now (for an agent that is not running yet).

    .EXAMPLE
    Connect-CertAgent

    The installed agent; checks that it answers.

    .EXAMPLE
    Connect-CertAgent -ConfigFile .\.certagent-dev\certagent.yaml

    The agent of `make dev` (certagent dev) in a checkout.

    .EXAMPLE
    Connect-CertAgent -BaseUri http://127.0.0.1:9000 -Token (Read-Host -AsSecureString 'API token')

    .OUTPUTS
    CertAgent.Connection

    .LINK
    about_CertAgent
    #>
    [CmdletBinding(DefaultParameterSetName = 'TokenPath')]
    [OutputType('CertAgent.Connection')]
    param(
        [string] $BaseUri,

        [Parameter(ParameterSetName = 'TokenPath')]
        [string] $TokenPath,

        [Parameter(Mandatory = $true, ParameterSetName = 'Token')]
        [System.Security.SecureString] $Token,

        [string] $ConfigFile,

        [string] $ExePath,

        [switch] $SkipCheck
    )

    try {
        $installed = $null
        if ([string]::IsNullOrEmpty($ConfigFile)) {
            $installed = Get-CertAgentInstalledConnection
        } else {
            if (-not (Test-Path -LiteralPath $ConfigFile -PathType Leaf)) {
                throw (New-CertAgentErrorRecord -ErrorId 'config_not_found' -Category ObjectNotFound -TargetObject $ConfigFile `
                        -Message ('the config file {0} does not exist' -f $ConfigFile))
            }
            $full = (Resolve-Path -LiteralPath $ConfigFile).ProviderPath
            try {
                $config = Read-CertAgentConfigFile -Path $full
            } catch {
                $elevate = 'run PowerShell as Administrator (elevated)'
                if (-not (Test-CertAgentWindows)) {
                    $elevate = 'run as root (sudo pwsh)'
                }
                throw (New-CertAgentErrorRecord -ErrorId 'config_unreadable' -Category PermissionDenied -TargetObject $full `
                        -Message ('cannot read the config file {0}: {1}; {2}' -f $full, $_.Exception.Message, $elevate))
            }
            $installed = [pscustomobject]@{
                BaseUri    = ConvertTo-CertAgentBaseUri -Address $config.Listen
                TokenPath  = $config.TokenFile
                ConfigFile = $config.Path
                InstallDir = $null
                Source     = 'config file ' + $config.Path
            }
        }

        $uri = $installed.BaseUri
        if (-not [string]::IsNullOrEmpty($BaseUri)) {
            $uri = ConvertTo-CertAgentBaseUri -Address $BaseUri
        }
        $path = $installed.TokenPath
        if (-not [string]::IsNullOrEmpty($TokenPath)) {
            $path = (Resolve-Path -LiteralPath $TokenPath -ErrorAction SilentlyContinue).ProviderPath
            if ([string]::IsNullOrEmpty($path)) {
                $path = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($TokenPath)
            }
        }
        $tokenSource = 'file'
        if ($null -ne $Token) {
            $path = $null
            $tokenSource = 'parameter'
        }
        $session = [pscustomobject]@{
            BaseUri    = $uri
            TokenPath  = $path
            Token      = $Token
            ConfigFile = $installed.ConfigFile
            ExePath    = $ExePath
        }

        $version = $null
        $tenant = $null
        $targetApp = $null
        if (-not $SkipCheck) {
            $response = Invoke-CertAgentApi -Connection $session -Method 'GET' -Path '/api/v1/status'
            $status = ConvertTo-CertAgentStatus $response.Body -BaseUri $uri
            $version = $status.Version
            $tenant = $status.TenantId
            $targetApp = $status.TargetApp
        }
        $script:CertAgentSession = $session

        [pscustomobject]@{
            PSTypeName   = 'CertAgent.Connection'
            BaseUri      = $uri
            TokenPath    = $path
            TokenSource  = $tokenSource
            ConfigFile   = $installed.ConfigFile
            AgentVersion = $version
            TenantId     = $tenant
            TargetApp    = $targetApp
            Checked      = (-not $SkipCheck)
        }
    } catch {
        $PSCmdlet.ThrowTerminatingError($_)
    }
}
