function Submit-CertAgentCertificate {
    <#
    .SYNOPSIS
    Submits certificate files to the agent, as if dropped into its drop folder, and returns
    each file's verdict.

    .DESCRIPTION
    Sends each file to the agent (POST /api/v1/rotations with JSON {certificate, fileName}:
    a text file such as PEM or bare base64 as it is, a binary (DER) file as the base64 of its
    bytes). The agent runs the same policy and engine as for the drop folder. Each file gives
    one CertAgent.Verdict:

    - accepted, with the rotation (RotationId, State): Created is $true for a new rotation,
      $false when the same certificate was submitted before (nothing else happens then);
    - rejected, with the stable Code and the Message: not_a_certificate,
      contains_private_key, multiple_certificates, expired, expires_too_soon, weak_key,
      unsupported_key_type, not_allowed, too_large, unsupported_file, no_target,
      ambiguous_target, signature_missing, signature_invalid, signer_not_pinned (and, in
      the drop folder only, certificate_missing for a signature file without its
      certificate).

    The provider's signature of a file goes with it: -Signature, or the file's name plus .sig
    beside it (provider.cer.sig for provider.cer), as in the drop folder. With a signature,
    a text certificate is sent exactly as its bytes are (a byte order mark kept), since the
    signature covers the file's exact bytes. When the agent requires signed certificates
    (provenance.required), a file without one is refused as signature_missing.

    Refusals are verdicts, not errors, so a folder can be piped in and the result filtered.
    Like the drop folder, the module never reads or sends .pfx, .p12 or .key files (verdict
    contains_private_key) and refuses folders (unsupported_file) and files over 1 MiB
    (too_large) without sending them. A file that cannot be read is a non-terminating error;
    an agent that cannot be reached, or any other API problem, is a terminating error.

    Test-CertAgentCertificate gives the verdict without submitting.

    .PARAMETER Path
    Files to submit; wildcards allowed.

    .PARAMETER LiteralPath
    Files to submit, taken as written (no wildcards); Get-ChildItem's output binds here.

    .PARAMETER Signature
    The provider's detached signature of the certificate file (made with openssl dgst -sha256
    -sign, openssl pkeyutl -sign -rawin, or cosign sign-blob), binary or base64. Only with one
    certificate file. Default: the file's name plus .sig, when that file exists.

    .PARAMETER Target
    The target the certificate is for (its name in the agent's config). Default: the target
    whose policy names the certificate (with one target: that one).

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's.

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's.
    Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Submit-CertAgentCertificate -Path .\provider-2027.cer

    .EXAMPLE
    Get-ChildItem C:\Incoming -File | Submit-CertAgentCertificate | Where-Object { -not $_.Accepted }

    Submits a folder and shows only the refusals, with their codes.

    .EXAMPLE
    Submit-CertAgentCertificate .\provider-2027.cer | Approve-CertAgentRotation

    With manual approval: submit, then approve the new rotation (asks first).

    .EXAMPLE
    Submit-CertAgentCertificate .\provider-2027.cer -Signature .\provider-2027.cer.sig

    Submits the certificate with the provider's signature, which the agent checks against the
    provider's pinned keys.

    .EXAMPLE
    Submit-CertAgentCertificate .\*.cer -WhatIf

    .OUTPUTS
    CertAgent.Verdict

    .LINK
    Test-CertAgentCertificate
    #>
    [CmdletBinding(DefaultParameterSetName = 'Path', SupportsShouldProcess = $true, ConfirmImpact = 'Medium')]
    [OutputType('CertAgent.Verdict')]
    param(
        [Parameter(Mandatory = $true, Position = 0, ParameterSetName = 'Path', ValueFromPipeline = $true)]
        [ValidateNotNullOrEmpty()]
        [string[]] $Path,

        [Parameter(Mandatory = $true, ParameterSetName = 'LiteralPath', ValueFromPipelineByPropertyName = $true)]
        [Alias('PSPath', 'FullName')]
        [ValidateNotNullOrEmpty()]
        [string[]] $LiteralPath,

        [string] $Signature,

        [string] $Target,

        [string] $BaseUri,

        [string] $TokenPath,

        [System.Security.SecureString] $Token
    )

    begin {
        try {
            $connection = Resolve-CertAgentConnection -BaseUri $BaseUri -TokenPath $TokenPath -Token $Token
        } catch {
            $PSCmdlet.ThrowTerminatingError($_)
        }
        # The agent's limit for one certificate file (docs/contract.md: too_large).
        $maxBytes = 1048576
        # -Signature names the signature of one file; several files each take their own .sig.
        $fileCount = 0
    }

    process {
        $literal = ($PSCmdlet.ParameterSetName -eq 'LiteralPath')
        $given = $Path
        if ($literal) {
            $given = $LiteralPath
        }
        foreach ($p in $given) {
            try {
                $files = @(Resolve-CertAgentFilePath -Path $p -Literal:$literal)
            } catch {
                $PSCmdlet.WriteError($_)
                continue
            }
            foreach ($file in $files) {
                if (-not $PSCmdlet.ShouldProcess($file, 'Submit the certificate to the agent')) {
                    continue
                }
                $name = [System.IO.Path]::GetFileName($file)
                if (Test-Path -LiteralPath $file -PathType Container) {
                    New-CertAgentVerdict -Path $file -Verdict 'rejected' -Code 'unsupported_file' -Source 'local' `
                        -Message 'a folder, not a certificate file'
                    continue
                }
                $extension = [System.IO.Path]::GetExtension($file).ToLowerInvariant()
                if ($extension -eq '.pfx' -or $extension -eq '.p12' -or $extension -eq '.key') {
                    New-CertAgentVerdict -Path $file -Verdict 'rejected' -Code 'contains_private_key' -Source 'local' `
                        -Message ('a {0} file holds a private key: not read, not sent; ask the provider for the public certificate (.cer)' -f $extension)
                    continue
                }
                try {
                    $length = (Get-Item -LiteralPath $file -ErrorAction Stop).Length
                    if ($length -gt $maxBytes) {
                        New-CertAgentVerdict -Path $file -Verdict 'rejected' -Code 'too_large' -Source 'local' `
                            -Message ('{0} bytes: larger than 1 MiB, not a certificate file' -f $length)
                        continue
                    }
                    $bytes = [System.IO.File]::ReadAllBytes($file)
                } catch {
                    $PSCmdlet.WriteError($_)
                    continue
                }
                if ($bytes.Length -eq 0) {
                    New-CertAgentVerdict -Path $file -Verdict 'rejected' -Code 'not_a_certificate' -Source 'local' -Message 'the file is empty'
                    continue
                }
                if ($name.Length -gt 255) {
                    $name = $name.Substring(0, 255)
                }
                $fileCount++
                if ($Signature -and $fileCount -gt 1) {
                    $PSCmdlet.ThrowTerminatingError((New-CertAgentErrorRecord -ErrorId 'invalid_request' -Category InvalidArgument -TargetObject $Signature `
                        -Message '-Signature goes with one certificate file; for several, put each one''s signature beside it as <file>.sig'))
                }
                $sigPath = $Signature
                if (-not $sigPath -and (Test-Path -LiteralPath ($file + '.sig') -PathType Leaf)) {
                    $sigPath = $file + '.sig'
                }
                $sigBytes = $null
                if ($sigPath) {
                    try {
                        $sigBytes = [System.IO.File]::ReadAllBytes((Resolve-Path -LiteralPath $sigPath).ProviderPath)
                    } catch {
                        $PSCmdlet.WriteError($_)
                        continue
                    }
                }

                try {
                    $body = @{
                        certificate = ConvertTo-CertAgentSubmission -Bytes $bytes -KeepByteOrderMark:($null -ne $sigBytes)
                        fileName    = $name
                    }
                    if ($null -ne $sigBytes) {
                        $body['signature'] = ConvertTo-CertAgentSubmission -Bytes $sigBytes
                    }
                    if ($Target) {
                        $body['target'] = $Target
                    }
                    $response = Invoke-CertAgentApi -Connection $connection -Method 'POST' -Path '/api/v1/rotations' -Body $body
                } catch {
                    $problem = $_.TargetObject
                    $isProblem = ($null -ne $problem -and @($problem.PSObject.TypeNames) -contains 'CertAgent.ApiProblem')
                    if ($isProblem -and ($problem.Status -eq 422 -or $problem.Code -eq 'too_large')) {
                        New-CertAgentVerdict -Path $file -Verdict 'rejected' -Code $problem.Code -Message $problem.Detail `
                            -Certificate $problem.Certificate -Source 'api'
                        continue
                    }
                    $PSCmdlet.ThrowTerminatingError($_)
                }
                $rotation = ConvertTo-CertAgentRotation $response.Body
                $created = ($response.StatusCode -eq 201)
                if ($created) {
                    $message = 'new rotation {0}: {1}' -f $rotation.Id, $rotation.State
                } else {
                    $message = 'submitted before: rotation {0} is {1}; nothing else happened' -f $rotation.Id, $rotation.State
                }
                New-CertAgentVerdict -Path $file -Verdict 'accepted' -Message $message -Rotation $rotation -Created $created -Source 'api'
            }
        }
    }
}
