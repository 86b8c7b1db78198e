function Get-CertAgentRotation {
    <#
    .SYNOPSIS
    Gets rotations: one per provider certificate the agent was given, with its state and
    history.

    .DESCRIPTION
    Without -Id, lists the rotations oldest first (GET /api/v1/rotations), optionally only
    those in one -State. With -Id, gets that rotation (GET /api/v1/rotations/{id}); ids come
    from the pipeline too, by the property Id or RotationId (so certificates, verdicts and
    audit entries pipe into it).

    States: pending_approval (with policy.approval: manual) -> applying -> applied ->
    confirmed; or rejected, or failed (Redo-CertAgentRotation puts a failed one back).
    applied means the certificate is on the app registration and the provider should be told;
    Confirm-CertAgentRotation records that they were.

    .PARAMETER Id
    The rotation's id.

    .PARAMETER State
    Only rotations in this state.

    .PARAMETER Target
    Only the rotations of this target (its name in the agent's config). Default: every target's.

    .PARAMETER BaseUri
    The agent's API, for example http://127.0.0.1:8471. Default: Connect-CertAgent's, else the
    installed agent's.

    .PARAMETER TokenPath
    The agent's API token file. Default: Connect-CertAgent's, else the installed agent's.
    Reading it needs an elevated PowerShell (Windows) or root (Linux).

    .PARAMETER Token
    The API token itself, instead of reading the token file.

    .EXAMPLE
    Get-CertAgentRotation

    Every rotation, oldest first.

    .EXAMPLE
    Get-CertAgentRotation -State applied

    The certificates that are on the app and wait for you to tell the provider.

    .EXAMPLE
    (Get-CertAgentRotation -Id 7d9f1c2e-5b1a-4c3e-9f0d-2a6b8c4d1e0f).History

    .OUTPUTS
    CertAgent.Rotation

    .LINK
    about_CertAgent
    #>
    [CmdletBinding(DefaultParameterSetName = 'List')]
    [OutputType('CertAgent.Rotation')]
    param(
        [Parameter(Mandatory = $true, Position = 0, ParameterSetName = 'Id', ValueFromPipelineByPropertyName = $true)]
        [Alias('RotationId')]
        [ValidateNotNullOrEmpty()]
        [string[]] $Id,

        [Parameter(ParameterSetName = 'List')]
        [ValidateSet('pending_approval', 'applying', 'applied', 'confirmed', 'rejected', 'failed')]
        [string] $State,

        [Parameter(ParameterSetName = 'List')]
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
    }

    process {
        try {
            if ($PSCmdlet.ParameterSetName -eq 'Id') {
                foreach ($one in $Id) {
                    $response = Invoke-CertAgentApi -Connection $connection -Method 'GET' -Path '/api/v1/rotations/{id}' -PathParameter @{ id = $one }
                    ConvertTo-CertAgentRotation $response.Body
                }
                return
            }
            $query = @{}
            if ($State) {
                $query['state'] = $State
            }
            if ($Target) {
                $query['target'] = $Target
            }
            $response = Invoke-CertAgentApi -Connection $connection -Method 'GET' -Path '/api/v1/rotations' -Query $query
            foreach ($item in @(ConvertTo-CertAgentArray (Get-CertAgentValue $response.Body 'items'))) {
                ConvertTo-CertAgentRotation $item
            }
        } catch {
            $PSCmdlet.ThrowTerminatingError($_)
        }
    }
}
