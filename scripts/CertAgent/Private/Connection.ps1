# Where the agent's API is and how to authenticate: explicit parameters, then the session's
# Connect-CertAgent, then the installed agent's config file, then the registry values the MSI
# writes (Windows), then the product defaults. See about_CertAgent, "CONNECTION".

# The product defaults (docs/contract.md: API listen default, state folder, config path).
$script:CertAgentDefaultListen = '127.0.0.1:8471'
$script:CertAgentRegistryKey = 'HKLM:\SOFTWARE\CertAgent'
$script:CertAgentRegistrySubKey = 'SOFTWARE\CertAgent'

function Get-CertAgentRegistry {
    <#
    .SYNOPSIS
    Returns the values under HKLM:\SOFTWARE\CertAgent as a hashtable (empty off Windows or
    when the key does not exist). Names: InstallDir, ConfigFile, ApiUrl, ApiPort, TokenFile.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param()

    $values = @{}
    if (-not (Test-CertAgentWindows)) {
        return $values
    }
    # The 64-bit view, where the x64 MSI writes, even from a 32-bit PowerShell.
    $key = $null
    try {
        $hive = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, [Microsoft.Win32.RegistryView]::Registry64)
        $key = $hive.OpenSubKey($script:CertAgentRegistrySubKey)
    } catch {
        Write-Verbose ('CertAgent: cannot open {0}: {1}' -f $script:CertAgentRegistryKey, $_.Exception.Message)
    }
    if ($null -eq $key) {
        return $values
    }
    try {
        # Registry value names are case-insensitive: the MSI's CONFIGFILE and APIPORT
        # properties are the ConfigFile and ApiPort values.
        foreach ($name in @('InstallDir', 'ConfigFile', 'ApiUrl', 'ApiPort', 'TokenFile')) {
            $value = $key.GetValue($name)
            if ($null -ne $value -and -not [string]::IsNullOrWhiteSpace([string] $value)) {
                $values[$name] = ([string] $value).Trim()
            }
        }
    } finally {
        $key.Dispose()
    }
    return $values
}

function Get-CertAgentDefaultPath {
    <#
    .SYNOPSIS
    Returns the product's default config file and state folder for this OS.
    #>
    [CmdletBinding()]
    param()

    if (Test-CertAgentWindows) {
        $programData = $env:ProgramData
        if ([string]::IsNullOrEmpty($programData)) {
            $programData = 'C:\ProgramData'
        }
        $root = Join-Path -Path $programData -ChildPath 'CertAgent'
        return [pscustomobject]@{
            ConfigFile = Join-Path -Path $root -ChildPath 'certagent.yaml'
            StateDir   = Join-Path -Path $root -ChildPath 'state'
        }
    }
    return [pscustomobject]@{
        ConfigFile = '/etc/certagent/certagent.yaml'
        StateDir   = '/var/lib/certagent'
    }
}

function ConvertFrom-CertAgentYamlScalar {
    <#
    .SYNOPSIS
    Returns the value of one YAML scalar as written after "key:": quotes removed, a trailing
    comment cut, "" for nothing.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory = $true)]
        [AllowEmptyString()]
        [string] $Text
    )

    $t = $Text.Trim()
    if ($t.StartsWith('"')) {
        # Double-quoted: backslash escapes (C:\\ProgramData in YAML is C:\ProgramData).
        $sb = New-Object -TypeName System.Text.StringBuilder
        $i = 1
        while ($i -lt $t.Length) {
            $c = $t[$i]
            if ($c -eq [char] 92 -and $i + 1 -lt $t.Length) {
                $next = $t[$i + 1]
                if ($next -ceq [char] 'n') {
                    [void] $sb.Append([char] 10)
                } elseif ($next -ceq [char] 't') {
                    [void] $sb.Append([char] 9)
                } else {
                    [void] $sb.Append($next)
                }
                $i += 2
                continue
            }
            if ($c -eq [char] 34) {
                break
            }
            [void] $sb.Append($c)
            $i++
        }
        return $sb.ToString()
    }
    if ($t.StartsWith("'")) {
        $end = 1
        $sb = New-Object -TypeName System.Text.StringBuilder
        while ($end -lt $t.Length) {
            $c = $t[$end]
            if ($c -eq [char] 39) {
                if ($end + 1 -lt $t.Length -and $t[$end + 1] -eq [char] 39) {
                    [void] $sb.Append([char] 39)
                    $end += 2
                    continue
                }
                break
            }
            [void] $sb.Append($c)
            $end++
        }
        return $sb.ToString()
    }
    $hash = [regex]::Match($t, '(^|\s)#')
    if ($hash.Success) {
        $t = $t.Substring(0, $hash.Index)
    }
    return $t.Trim()
}

function Read-CertAgentConfigFile {
    <#
    .SYNOPSIS
    Reads the keys the module needs from an agent config (certagent.yaml): api.listen,
    api.token_file and state_dir, with relative paths made absolute from the config's folder.
    .DESCRIPTION
    A small line parser, not a YAML library: it understands the block style of
    configs/certagent.example.yaml (top-level keys at column 0, "api:" with indented keys),
    plain, single- and double-quoted values and trailing comments. Returns an object with
    Path, Listen, TokenFile and StateDir (empty values filled with the product defaults), or
    throws when the file cannot be read.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)]
        [string] $Path
    )

    $full = [System.IO.Path]::GetFullPath($Path)
    $lines = [System.IO.File]::ReadAllLines($full)
    $listen = ''
    $tokenFile = ''
    $stateDir = ''
    $section = ''
    foreach ($line in $lines) {
        if ($line -match '^\s*(#.*)?$') {
            continue
        }
        $m = [regex]::Match($line, '^(\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$')
        if (-not $m.Success) {
            continue
        }
        $indent = $m.Groups[1].Value.Length
        $key = $m.Groups[2].Value
        $value = ConvertFrom-CertAgentYamlScalar -Text $m.Groups[3].Value
        if ($indent -eq 0) {
            $section = $key
            if ($key -eq 'state_dir') {
                $stateDir = $value
            }
            continue
        }
        if ($section -eq 'api') {
            if ($key -eq 'listen') {
                $listen = $value
            } elseif ($key -eq 'token_file') {
                $tokenFile = $value
            }
        }
    }

    $folder = Split-Path -Path $full -Parent
    $defaults = Get-CertAgentDefaultPath
    if ([string]::IsNullOrEmpty($stateDir)) {
        $stateDir = $defaults.StateDir
    } elseif (-not [System.IO.Path]::IsPathRooted($stateDir)) {
        $stateDir = [System.IO.Path]::GetFullPath((Join-Path -Path $folder -ChildPath $stateDir))
    }
    if ([string]::IsNullOrEmpty($tokenFile)) {
        $tokenFile = Join-Path -Path $stateDir -ChildPath 'api.token'
    } elseif (-not [System.IO.Path]::IsPathRooted($tokenFile)) {
        $tokenFile = [System.IO.Path]::GetFullPath((Join-Path -Path $folder -ChildPath $tokenFile))
    }
    if ([string]::IsNullOrEmpty($listen)) {
        $listen = $script:CertAgentDefaultListen
    }
    return [pscustomobject]@{
        Path      = $full
        Listen    = $listen
        TokenFile = $tokenFile
        StateDir  = $stateDir
    }
}

function ConvertTo-CertAgentBaseUri {
    <#
    .SYNOPSIS
    Turns a listen address (host:port) or a URL into the API's base URL without a trailing /.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory = $true)]
        [string] $Address
    )

    $a = $Address.Trim()
    if ($a -notmatch '^[A-Za-z][A-Za-z0-9+.-]*://') {
        $a = 'http://' + $a
    }
    $uri = $null
    if (-not [System.Uri]::TryCreate($a, [System.UriKind]::Absolute, [ref] $uri) -or ($uri.Scheme -ne 'http' -and $uri.Scheme -ne 'https')) {
        throw (New-CertAgentErrorRecord -ErrorId 'invalid_base_uri' -Category InvalidArgument -TargetObject $Address `
                -Message ('"{0}" is not an address of the agent''s API: give http://host:port, for example http://127.0.0.1:8471' -f $Address))
    }
    return $a.TrimEnd('/')
}

function Get-CertAgentInstalledConnection {
    <#
    .SYNOPSIS
    Returns the installed agent's API address, token file, config file and install folder.
    .DESCRIPTION
    The config file is the registry's ConfigFile (Windows) or the OS default. When it can be
    read, its api.listen, api.token_file and state_dir decide, since the agent itself reads
    them. When it cannot (it does not exist, or this user may not read it), the registry's
    ApiUrl, ApiPort and TokenFile values are used (Windows), then the product defaults.
    #>
    [CmdletBinding()]
    param(
        [string] $ConfigFile
    )

    $registry = Get-CertAgentRegistry
    $defaults = Get-CertAgentDefaultPath
    $configPath = $ConfigFile
    if ([string]::IsNullOrEmpty($configPath)) {
        $configPath = $registry['ConfigFile']
    }
    if ([string]::IsNullOrEmpty($configPath)) {
        $configPath = $defaults.ConfigFile
    }

    $config = $null
    try {
        $config = Read-CertAgentConfigFile -Path $configPath
    } catch {
        Write-Verbose ('CertAgent: not reading the agent config {0}: {1}' -f $configPath, $_.Exception.Message)
    }

    if ($null -ne $config) {
        return [pscustomobject]@{
            BaseUri    = ConvertTo-CertAgentBaseUri -Address $config.Listen
            TokenPath  = $config.TokenFile
            ConfigFile = $config.Path
            InstallDir = $registry['InstallDir']
            Source     = 'config file ' + $config.Path
        }
    }

    $baseUri = 'http://' + $script:CertAgentDefaultListen
    $source = 'defaults'
    if ($registry['ApiUrl']) {
        $baseUri = ConvertTo-CertAgentBaseUri -Address $registry['ApiUrl']
        $source = 'registry ' + $script:CertAgentRegistryKey
    } elseif ($registry['ApiPort']) {
        $baseUri = ConvertTo-CertAgentBaseUri -Address ('127.0.0.1:' + $registry['ApiPort'])
        $source = 'registry ' + $script:CertAgentRegistryKey
    }
    $tokenPath = Join-Path -Path $defaults.StateDir -ChildPath 'api.token'
    if ($registry['TokenFile']) {
        $tokenPath = $registry['TokenFile']
    }
    return [pscustomobject]@{
        BaseUri    = $baseUri
        TokenPath  = $tokenPath
        ConfigFile = $configPath
        InstallDir = $registry['InstallDir']
        Source     = $source
    }
}

function Resolve-CertAgentConnection {
    <#
    .SYNOPSIS
    Returns the connection a command uses: its own -BaseUri/-TokenPath/-Token first, then
    Connect-CertAgent's session, then the installed agent's values.
    #>
    [CmdletBinding()]
    param(
        [string] $BaseUri,

        [string] $TokenPath,

        [System.Security.SecureString] $Token
    )

    $session = $script:CertAgentSession
    $installed = $null
    if ($null -eq $session -and ([string]::IsNullOrEmpty($BaseUri) -or ([string]::IsNullOrEmpty($TokenPath) -and $null -eq $Token))) {
        $installed = Get-CertAgentInstalledConnection
    }

    $uri = $BaseUri
    if ([string]::IsNullOrEmpty($uri) -and $null -ne $session) {
        $uri = $session.BaseUri
    }
    if ([string]::IsNullOrEmpty($uri) -and $null -ne $installed) {
        $uri = $installed.BaseUri
    }
    $uri = ConvertTo-CertAgentBaseUri -Address $uri

    $secret = $Token
    $path = $TokenPath
    if (-not [string]::IsNullOrEmpty($path)) {
        # [System.IO.File] resolves relative paths against .NET's current directory, not
        # PowerShell's location.
        $path = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($path)
    }
    if ($null -eq $secret -and [string]::IsNullOrEmpty($path) -and $null -ne $session) {
        $secret = $session.Token
        $path = $session.TokenPath
    }
    if ($null -eq $secret -and [string]::IsNullOrEmpty($path) -and $null -ne $installed) {
        $path = $installed.TokenPath
    }

    return [pscustomobject]@{
        BaseUri   = $uri
        TokenPath = $path
        Token     = $secret
    }
}

function ConvertFrom-CertAgentSecureString {
    <#
    .SYNOPSIS
    Returns the plain text of a SecureString (works in 5.1 and 7, on every OS).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory = $true)]
        [System.Security.SecureString] $SecureString
    )

    $credential = New-Object -TypeName System.Management.Automation.PSCredential -ArgumentList @('certagent', $SecureString)
    return $credential.GetNetworkCredential().Password
}

function Read-CertAgentToken {
    <#
    .SYNOPSIS
    Returns the API token of a connection: its -Token, or the content of its token file.
    Errors say what to do in words: run elevated (Windows) or as root (Linux), start the agent,
    or pass -Token.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory = $true)]
        [object] $Connection
    )

    if ($null -ne $Connection.Token) {
        $plain = (ConvertFrom-CertAgentSecureString -SecureString $Connection.Token).Trim()
        if ($plain.Length -eq 0) {
            throw (New-CertAgentErrorRecord -ErrorId 'token_empty' -Category InvalidArgument -Message 'the -Token given is empty')
        }
        return $plain
    }

    $path = [string] $Connection.TokenPath
    if ([string]::IsNullOrEmpty($path)) {
        throw (New-CertAgentErrorRecord -ErrorId 'token_not_found' -Category ObjectNotFound `
                -Message 'no API token file is known: pass -TokenPath or -Token, or run Connect-CertAgent -ConfigFile <the agent''s certagent.yaml>')
    }

    if (Test-CertAgentWindows) {
        $elevate = 'run PowerShell as Administrator (elevated): the token file is readable only by administrators and the CertAgent service'
    } else {
        $elevate = 'run as root (sudo pwsh): the token file is readable only by root and the certagent service'
    }

    $text = $null
    try {
        $text = [System.IO.File]::ReadAllText($path)
    } catch {
        $ex = $_.Exception
        while ($ex -is [System.Management.Automation.MethodInvocationException] -and $null -ne $ex.InnerException) {
            $ex = $ex.InnerException
        }
        if ($ex -is [System.UnauthorizedAccessException] -or $ex -is [System.Security.SecurityException]) {
            throw (New-CertAgentErrorRecord -ErrorId 'token_access_denied' -Category PermissionDenied -TargetObject $path -InnerException $ex `
                    -Message ('cannot read the API token file {0}: access is denied. To use the agent''s API, {1}; or pass -Token.' -f $path, $elevate) `
                    -RecommendedAction $elevate)
        }
        if ($ex -is [System.IO.FileNotFoundException] -or $ex -is [System.IO.DirectoryNotFoundException]) {
            throw (New-CertAgentErrorRecord -ErrorId 'token_not_found' -Category ObjectNotFound -TargetObject $path -InnerException $ex `
                    -Message ('cannot read the API token file {0}: it does not exist. The agent creates it when it starts: is it running (certagent status)? If the agent uses another config, run Connect-CertAgent -ConfigFile <its certagent.yaml>.' -f $path))
        }
        throw (New-CertAgentErrorRecord -ErrorId 'token_unreadable' -Category ReadError -TargetObject $path -InnerException $ex `
                -Message ('cannot read the API token file {0}: {1}. To use the agent''s API, {2}.' -f $path, $ex.Message, $elevate) `
                -RecommendedAction $elevate)
    }
    $token = $text.Trim()
    if ($token.Length -eq 0) {
        throw (New-CertAgentErrorRecord -ErrorId 'token_empty' -Category InvalidData -TargetObject $path `
                -Message ('the API token file {0} is empty: restart the agent to write a new token' -f $path))
    }
    return $token
}

function Get-CertAgentActor {
    <#
    .SYNOPSIS
    Returns who is calling, for the X-CertAgent-Actor header (the agent records api:<name>):
    DOMAIN\user on Windows, the user name elsewhere; printable ASCII only (a header value).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param()

    $name = [System.Environment]::UserName
    if ((Test-CertAgentWindows) -and -not [string]::IsNullOrEmpty([System.Environment]::UserDomainName)) {
        $name = [System.Environment]::UserDomainName + '\' + $name
    }
    $name = $name -replace '[^\x20-\x7E]', '?'
    if ([string]::IsNullOrWhiteSpace($name)) {
        $name = 'powershell'
    }
    return $name
}
