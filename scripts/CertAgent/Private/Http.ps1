# The one place the module talks HTTP. Every API call is Invoke-CertAgentApi with a literal
# -Method and a literal -Path as written in api/openapi.json ({id} placeholders filled from
# -PathParameter): `make test-powershell` reads those calls and checks them against the
# OpenAPI document, and refuses Invoke-RestMethod/Invoke-WebRequest anywhere else.

function Invoke-CertAgentApi {
    <#
    .SYNOPSIS
    Calls the agent's API and returns StatusCode, Body (the parsed JSON, or $null) and
    Headers; an answer that is not a success becomes a terminating error whose ErrorId is the
    problem's code (see ConvertFrom-CertAgentHttpError).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)]
        [object] $Connection,

        [ValidateSet('GET', 'POST')]
        [string] $Method = 'GET',

        [Parameter(Mandatory = $true)]
        [string] $Path,

        [hashtable] $PathParameter,

        [hashtable] $Query,

        [hashtable] $Body,

        [byte[]] $RawBody,

        [string] $ContentType = 'application/octet-stream',

        [hashtable] $Header
    )

    $relative = $Path
    if ($null -ne $PathParameter) {
        foreach ($key in @($PathParameter.Keys)) {
            $relative = $relative.Replace('{' + $key + '}', [System.Uri]::EscapeDataString([string] $PathParameter[$key]))
        }
    }
    if ($relative.Contains('{')) {
        throw ('CertAgent internal error: {0}: a path parameter has no value' -f $Path)
    }
    $uri = $Connection.BaseUri + $relative
    if ($null -ne $Query -and $Query.Count -gt 0) {
        $pairs = @()
        foreach ($key in @($Query.Keys | Sort-Object)) {
            $pairs += ('{0}={1}' -f [System.Uri]::EscapeDataString([string] $key), [System.Uri]::EscapeDataString([string] $Query[$key]))
        }
        $uri = $uri + '?' + ($pairs -join '&')
    }

    $token = Read-CertAgentToken -Connection $Connection
    $headers = @{
        'Authorization'     = 'Bearer ' + $token
        'X-CertAgent-Actor' = Get-CertAgentActor
    }
    if ($null -ne $Header) {
        foreach ($key in @($Header.Keys)) {
            $headers[$key] = $Header[$key]
        }
    }

    $request = @{
        Uri             = $uri
        Method          = $Method
        Headers         = $headers
        UserAgent       = 'CertAgent-PowerShell/' + $PSVersionTable.PSVersion.ToString()
        UseBasicParsing = $true
        TimeoutSec      = 120
        ErrorAction     = 'Stop'
    }
    if ($null -ne $Body) {
        # UTF-8 bytes: Windows PowerShell 5.1 would send a string body in ISO-8859-1.
        $json = ConvertTo-Json -InputObject $Body -Compress -Depth 5
        $request['Body'] = [System.Text.Encoding]::UTF8.GetBytes($json)
        $request['ContentType'] = 'application/json; charset=utf-8'
    } elseif ($null -ne $RawBody) {
        $request['Body'] = $RawBody
        $request['ContentType'] = $ContentType
    }

    # The progress bar makes Windows PowerShell 5.1's Invoke-WebRequest slow.
    $ProgressPreference = 'SilentlyContinue'
    Write-Verbose ('CertAgent: {0} {1}' -f $Method, $uri)
    try {
        $response = Invoke-WebRequest @request
    } catch {
        throw (ConvertFrom-CertAgentHttpError -ErrorRecord $_ -Method $Method -Uri $uri -BaseUri $Connection.BaseUri)
    }

    $text = Get-CertAgentResponseText -Response $response
    $data = $null
    if (-not [string]::IsNullOrWhiteSpace($text)) {
        $data = ConvertFrom-Json -InputObject $text
    }
    return [pscustomobject]@{
        StatusCode = [int] $response.StatusCode
        Body       = $data
        Headers    = $response.Headers
    }
}

function Get-CertAgentResponseText {
    <#
    .SYNOPSIS
    Returns the body of an Invoke-WebRequest response decoded as UTF-8 (the agent's JSON is
    UTF-8; 5.1 guesses ISO-8859-1 when the Content-Type has no charset).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory = $true)]
        [object] $Response
    )

    $bytes = $null
    $stream = Get-CertAgentValue $Response 'RawContentStream'
    if ($stream -is [System.IO.MemoryStream]) {
        $bytes = $stream.ToArray()
    } else {
        $content = Get-CertAgentValue $Response 'Content'
        if ($content -is [byte[]]) {
            $bytes = $content
        } elseif ($null -ne $content) {
            return ([string] $content).TrimStart([char] 0xFEFF)
        }
    }
    if ($null -eq $bytes) {
        return ''
    }
    return [System.Text.Encoding]::UTF8.GetString($bytes).TrimStart([char] 0xFEFF)
}

function ConvertFrom-CertAgentHttpError {
    <#
    .SYNOPSIS
    Turns an Invoke-WebRequest failure into a CertAgent ErrorRecord: the API's problem
    (ErrorId = its code) or "cannot reach the agent".
    .DESCRIPTION
    Handles both shapes: Windows PowerShell 5.1 throws a WebException whose Response holds the
    status and a response stream (and usually fills ErrorDetails.Message with the body);
    PowerShell 7 throws an HttpResponseException whose Response is an HttpResponseMessage, with
    the body in ErrorDetails.Message. No Response at all means no answer came.
    #>
    [CmdletBinding()]
    [OutputType([System.Management.Automation.ErrorRecord])]
    param(
        [Parameter(Mandatory = $true)]
        [System.Management.Automation.ErrorRecord] $ErrorRecord,

        [string] $Method,

        [string] $Uri,

        [string] $BaseUri
    )

    $exception = $ErrorRecord.Exception
    $response = Get-CertAgentValue $exception 'Response'
    $status = 0
    if ($null -ne $response) {
        try {
            $status = [int] $response.StatusCode
        } catch {
            $status = 0
        }
    }

    $text = $null
    if ($null -ne $ErrorRecord.ErrorDetails -and -not [string]::IsNullOrEmpty($ErrorRecord.ErrorDetails.Message)) {
        $text = $ErrorRecord.ErrorDetails.Message
    }
    if ([string]::IsNullOrEmpty($text) -and $null -ne $response -and $null -ne $response.PSObject.Methods['GetResponseStream']) {
        try {
            $stream = $response.GetResponseStream()
            if ($stream.CanSeek) {
                [void] $stream.Seek(0, [System.IO.SeekOrigin]::Begin)
            }
            $reader = New-Object -TypeName System.IO.StreamReader -ArgumentList @($stream, [System.Text.Encoding]::UTF8)
            $text = $reader.ReadToEnd()
            $reader.Dispose()
        } catch {
            $text = $null
        }
    }

    if ($status -eq 0) {
        $reason = $exception.Message
        if ($null -ne $exception.InnerException) {
            $reason = $exception.InnerException.Message
        }
        return (New-CertAgentErrorRecord -ErrorId 'agent_unreachable' -Category ConnectionError -TargetObject $BaseUri -InnerException $exception `
                -Message ('cannot reach the agent at {0} ({1} {2}): {3}' -f $BaseUri, $Method, $Uri, $reason) `
                -RecommendedAction 'Is the agent running? Windows: Get-Service CertAgent; Linux: systemctl status certagent. If it listens elsewhere, use -BaseUri or Connect-CertAgent.')
    }

    $problem = $null
    if (-not [string]::IsNullOrWhiteSpace($text)) {
        try {
            $problem = ConvertFrom-Json -InputObject $text -ErrorAction Stop
        } catch {
            $problem = $null
        }
    }

    $retryAfter = $null
    try {
        $headers = Get-CertAgentValue $response 'Headers'
        $delta = Get-CertAgentValue (Get-CertAgentValue $headers 'RetryAfter') 'Delta'
        if ($null -ne $delta) {
            $retryAfter = [int] ([timespan] $delta).TotalSeconds
        } elseif ($null -ne $headers -and $headers -is [System.Collections.Specialized.NameValueCollection]) {
            $value = $headers['Retry-After']
            if ($value) {
                $retryAfter = [int] $value
            }
        }
    } catch {
        $retryAfter = $null
    }

    return (New-CertAgentProblemRecord -Problem $problem -Status $status -Text $text -Method $Method -Uri $Uri -RetryAfter $retryAfter)
}

function New-CertAgentProblemRecord {
    <#
    .SYNOPSIS
    Builds the ErrorRecord of an API problem (application/problem+json: type, title, status,
    detail, code): ErrorId = code, TargetObject = the problem as a CertAgent.ApiProblem,
    Exception.Data = Code, Title, Detail, Status, Problem.
    #>
    [CmdletBinding()]
    [OutputType([System.Management.Automation.ErrorRecord])]
    param(
        [AllowNull()]
        [object] $Problem,

        [int] $Status,

        [string] $Text,

        [string] $Method,

        [string] $Uri,

        [AllowNull()]
        [object] $RetryAfter
    )

    $code = [string] (Get-CertAgentValue $Problem 'code')
    if ([string]::IsNullOrEmpty($code)) {
        $code = 'http_' + $Status
    }
    $title = [string] (Get-CertAgentValue $Problem 'title')
    $detail = [string] (Get-CertAgentValue $Problem 'detail')
    if ($null -eq $Problem -and -not [string]::IsNullOrWhiteSpace($Text)) {
        $detail = $Text.Trim()
        if ($detail.Length -gt 300) {
            $detail = $detail.Substring(0, 300) + '...'
        }
    }
    $certificate = Get-CertAgentValue $Problem 'certificate'
    $target = [pscustomobject]@{
        PSTypeName  = 'CertAgent.ApiProblem'
        Code        = $code
        Title       = $title
        Detail      = $detail
        Status      = $Status
        Type        = [string] (Get-CertAgentValue $Problem 'type')
        State       = Get-CertAgentValue $Problem 'state'
        Certificate = ConvertTo-CertAgentCertificateFacts $certificate
        RetryAfter  = $RetryAfter
        Method      = $Method
        Uri         = $Uri
    }

    $text = $detail
    if ([string]::IsNullOrEmpty($text)) {
        $text = $title
    }
    if ([string]::IsNullOrEmpty($text)) {
        $text = 'HTTP ' + $Status
    }
    $message = '{0} ({1})' -f $text, $code

    $category = [System.Management.Automation.ErrorCategory]::NotSpecified
    $recommended = $null
    switch ($Status) {
        400 {
            $category = [System.Management.Automation.ErrorCategory]::InvalidArgument
        }
        401 {
            $category = [System.Management.Automation.ErrorCategory]::AuthenticationError
            $recommended = 'The token does not match the running agent''s (the agent writes a new one when it starts): run the command again, or Connect-CertAgent again.'
        }
        403 {
            $category = [System.Management.Automation.ErrorCategory]::PermissionDenied
        }
        404 {
            $category = [System.Management.Automation.ErrorCategory]::ObjectNotFound
        }
        409 {
            $category = [System.Management.Automation.ErrorCategory]::InvalidOperation
            $recommended = 'Get-CertAgentRotation shows each rotation''s state and what it allows.'
        }
        413 {
            $category = [System.Management.Automation.ErrorCategory]::LimitsExceeded
        }
        415 {
            $category = [System.Management.Automation.ErrorCategory]::InvalidType
        }
        422 {
            $category = [System.Management.Automation.ErrorCategory]::InvalidData
        }
        429 {
            $category = [System.Management.Automation.ErrorCategory]::LimitsExceeded
            if ($null -ne $RetryAfter) {
                $recommended = 'Try again in {0} seconds.' -f $RetryAfter
            }
        }
        default {
            if ($Status -ge 500) {
                $category = [System.Management.Automation.ErrorCategory]::ResourceUnavailable
            }
        }
    }

    $data = @{
        Title   = $title
        Detail  = $detail
        Status  = $Status
        Problem = $target
    }
    return (New-CertAgentErrorRecord -ErrorId $code -Message $message -Category $category -TargetObject $target -RecommendedAction $recommended -Data $data)
}
