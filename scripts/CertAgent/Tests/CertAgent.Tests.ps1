# Pester 5 tests of the CertAgent module. Invoke-WebRequest (the module's only HTTP call) is
# mocked, so no agent is needed: Invoke-Pester -Path scripts/CertAgent/Tests
# They run on Windows PowerShell 5.1 and PowerShell 7 (Windows and Linux).

BeforeAll {
    $manifest = Join-Path -Path (Split-Path -Path $PSScriptRoot -Parent) -ChildPath 'CertAgent.psd1'
    Import-Module -Name $manifest -Force
    . (Join-Path -Path $PSScriptRoot -ChildPath 'TestHelpers.ps1')
    $script:Token = ConvertTo-SecureString -String 'test-token' -AsPlainText -Force
    $script:Base = 'http://127.0.0.1:8471'
}

AfterAll {
    Remove-Module -Name 'CertAgent' -Force -ErrorAction SilentlyContinue
}

Describe 'the module' {
    It 'exports exactly the manifest''s functions, each with help and an example' {
        $exported = @((Get-Module -Name 'CertAgent').ExportedFunctions.Keys | Sort-Object)
        $exported.Count | Should -Be 16
        foreach ($name in $exported) {
            $help = Get-Help -Name $name -Full
            $help.Synopsis | Should -Not -BeNullOrEmpty
            @($help.Examples.Example).Count | Should -BeGreaterThan 0
        }
    }

    It 'gives every state-changing command -WhatIf and -Confirm' {
        foreach ($name in @('Approve-CertAgentRotation', 'Deny-CertAgentRotation', 'Confirm-CertAgentRotation', 'Redo-CertAgentRotation',
                'Remove-CertAgentCertificate', 'Submit-CertAgentCertificate', 'Start-CertAgentScan', 'Update-CertAgentCredential', 'Initialize-CertAgent')) {
            $command = Get-Command -Name $name
            $command.Parameters.ContainsKey('WhatIf') | Should -BeTrue
            $command.Parameters.ContainsKey('Confirm') | Should -BeTrue
        }
    }
}

Describe 'commands against a mocked agent' {
    BeforeEach {
        Connect-CertAgent -BaseUri $script:Base -Token $script:Token -SkipCheck | Out-Null
    }

    Context 'Get-CertAgentStatus' {
        BeforeEach {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith { New-FakeResponse -Body (Get-StatusJson) } `
                -ParameterFilter { $Method -eq 'GET' -and "$Uri" -eq 'http://127.0.0.1:8471/api/v1/status' }
        }

        It 'returns one CertAgent.Status with the problems first, most urgent first' {
            $status = Get-CertAgentStatus
            @($status).Count | Should -Be 1
            $status.PSObject.TypeNames | Should -Contain 'CertAgent.Status'
            $status.PSObject.Properties.Name[0] | Should -Be 'Problems'
            $status.Problems.Count | Should -Be 2
            $status.Problems[0].Code | Should -Be 'certificate_expiring'
            $status.Problems[0].PSObject.TypeNames | Should -Contain 'CertAgent.Problem'
            $status.Healthy | Should -BeFalse
            $status.PendingApproval | Should -Be 1
            $status.AwaitingConfirmation | Should -Be 1
            $status.NextExpiry | Should -BeOfType [datetime]
            $status.NextExpiry.ToUniversalTime() | Should -Be ([datetime]::new(2026, 11, 28, 0, 0, 0, [System.DateTimeKind]::Utc))
            $status.Uptime | Should -Be ([timespan]::FromHours(3))
        }

        It 'sends the token and the caller''s name' {
            Get-CertAgentStatus | Out-Null
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter {
                $Headers['Authorization'] -eq 'Bearer test-token' -and -not [string]::IsNullOrEmpty($Headers['X-CertAgent-Actor']) -and $UseBasicParsing
            }
        }
    }

    Context 'Get-CertAgentCertificate' {
        It 'returns CertAgent.Certificate objects, and -Refresh asks the agent to read Graph' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                New-FakeResponse -Body '{"items":[{"keyId":"k1","thumbprint":"A1","displayName":"Provider 2027","startDateTime":"2026-11-01T00:00:00Z","endDateTime":"2027-11-01T00:00:00Z","daysRemaining":340,"addedByAgent":true,"rotationId":"r1"}],"syncedAt":"2026-11-25T19:30:00Z"}'
            }
            $certificates = @(Get-CertAgentCertificate -Refresh)
            $certificates.Count | Should -Be 1
            $certificates[0].PSObject.TypeNames | Should -Contain 'CertAgent.Certificate'
            $certificates[0].EndDateTime | Should -BeOfType [datetime]
            $certificates[0].AddedByAgent | Should -BeTrue
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { "$Uri" -like '*/api/v1/certificates?refresh=true' }
        }

        It 'returns nothing for an empty list' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith { New-FakeResponse -Body '{"items":[]}' }
            @(Get-CertAgentCertificate).Count | Should -Be 0
        }
    }

    Context 'Get-CertAgentRotation' {
        It 'lists rotations in a state' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                New-FakeResponse -Body ([pscustomobject]@{ items = @((New-RotationJson -Id 'r1'), (New-RotationJson -Id 'r2')) })
            }
            $rotations = @(Get-CertAgentRotation -State 'applied')
            $rotations.Count | Should -Be 2
            $rotations[0].PSObject.TypeNames | Should -Contain 'CertAgent.Rotation'
            $rotations[0].Subject | Should -Be 'CN=Backup Provider 2027,O=Provider Ltd'
            $rotations[0].NotAfter | Should -BeOfType [datetime]
            $rotations[0].History[0].PSObject.TypeNames | Should -Contain 'CertAgent.RotationEvent'
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { "$Uri" -like '*/api/v1/rotations?state=applied' }
        }

        It 'handles a list of one (Windows PowerShell''s ConvertFrom-Json array quirk)' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                New-FakeResponse -Body ([pscustomobject]@{ items = @(New-RotationJson -Id 'only') })
            }
            $rotations = @(Get-CertAgentRotation)
            $rotations.Count | Should -Be 1
            $rotations[0].Id | Should -Be 'only'
        }

        It 'gets rotations by id from the pipeline (Id or RotationId), escaping the id' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith { New-FakeResponse -Body (New-RotationJson -Id 'r1') }
            $objects = @([pscustomobject]@{ Id = 'r1' }, [pscustomobject]@{ RotationId = 'a b' })
            @($objects | Get-CertAgentRotation).Count | Should -Be 2
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { "$Uri" -like '*/api/v1/rotations/r1' }
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { ([uri] "$Uri").AbsoluteUri -like '*/api/v1/rotations/a%20b' }
        }
    }

    Context 'rotation actions' {
        BeforeEach {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                New-FakeResponse -Body ([pscustomobject]@{ items = @((New-RotationJson -Id 'r1'), (New-RotationJson -Id 'r2')) })
            } -ParameterFilter { $Method -eq 'GET' }
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                New-FakeResponse -Body (New-RotationJson -Id 'r1' -State 'confirmed')
            } -ParameterFilter { $Method -eq 'POST' }
        }

        It 'confirms every applied rotation from the pipeline, with the note' {
            $result = @(Get-CertAgentRotation -State 'applied' | Confirm-CertAgentRotation -Note 'emailed AUCloud')
            $result.Count | Should -Be 2
            $result[0].State | Should -Be 'confirmed'
            foreach ($id in @('r1', 'r2')) {
                Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter {
                    "$Uri" -like "*/api/v1/rotations/$id/confirm" -and (Get-BodyJson $Body).note -eq 'emailed AUCloud' -and $ContentType -like 'application/json*'
                }
            }
        }

        It 'sends no body without a note' {
            Confirm-CertAgentRotation -Id 'r1' | Out-Null
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { $Method -eq 'POST' -and $null -eq $Body }
        }

        It 'changes nothing with -WhatIf' {
            Get-CertAgentRotation -State 'applied' | Confirm-CertAgentRotation -Note 'x' -WhatIf
            Get-CertAgentRotation -State 'pending_approval' | Approve-CertAgentRotation -WhatIf
            Deny-CertAgentRotation -Id 'r1' -Reason 'no' -WhatIf
            Redo-CertAgentRotation -Id 'r1' -WhatIf
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 0 -Exactly -ParameterFilter { $Method -eq 'POST' }
        }

        It 'approves (POST approve)' {
            Approve-CertAgentRotation -Id 'r1' -Note 'CHG-1' -Confirm:$false | Out-Null
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { "$Uri" -like '*/api/v1/rotations/r1/approve' -and (Get-BodyJson $Body).note -eq 'CHG-1' }
        }

        It 'denies with the reason as the note (POST reject)' {
            Deny-CertAgentRotation -Id 'r1' -Reason 'not ours' -Confirm:$false | Out-Null
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { "$Uri" -like '*/api/v1/rotations/r1/reject' -and (Get-BodyJson $Body).note -eq 'not ours' }
        }

        It 'retries (POST retry)' {
            Redo-CertAgentRotation -Id 'r1' | Out-Null
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { "$Uri" -like '*/api/v1/rotations/r1/retry' }
        }
    }

    Context 'targets and retiring' {
        It 'asks for one target''s certificates and rotations' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith { New-FakeResponse -Body '{"items":[{"target":"teams","keyId":"k1","thumbprint":"A1","displayName":"x","startDateTime":"2026-11-01T00:00:00Z","endDateTime":"2027-11-01T00:00:00Z","daysRemaining":340,"addedByAgent":false}]}' }
            $certificates = @(Get-CertAgentCertificate -Target 'teams')
            $certificates[0].Target | Should -Be 'teams'
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { "$Uri" -like '*/api/v1/certificates?target=teams' }
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith { New-FakeResponse -Body '{"items":[]}' }
            @(Get-CertAgentRotation -Target 'teams' -State 'applied').Count | Should -Be 0
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { "$Uri" -like '*/api/v1/rotations?*target=teams*' }
        }

        It 'retires from the pipeline with the target and the note, and not with -WhatIf' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                New-FakeResponse -Body '{"target":"exchange","keyId":"k1","thumbprint":"A1","displayName":"old","startDateTime":"2025-11-01T00:00:00Z","endDateTime":"2026-11-01T00:00:00Z","daysRemaining":-34,"addedByAgent":false}'
            }
            $old = [pscustomobject]@{ KeyId = 'k1'; Target = 'exchange' }
            $old | Remove-CertAgentCertificate -Note 'superseded' -WhatIf
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 0 -Exactly
            $removed = $old | Remove-CertAgentCertificate -Note 'superseded' -Confirm:$false
            $removed.KeyId | Should -Be 'k1'
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter {
                $Method -eq 'POST' -and "$Uri" -like '*/api/v1/certificates/k1/retire?target=exchange' -and (Get-BodyJson $Body).note -eq 'superseded'
            }
        }
    }

    Context 'API problems become terminating errors carrying the code' {
        It 'maps a problem (PowerShell 7 shape: ErrorDetails.Message)' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                throw (New-FakeHttpError -StatusCode 409 -Body (New-ProblemJson -Status 409 -Code 'invalid_state' -Detail 'rotation r1 is confirmed'))
            }
            $caught = $null
            try {
                Confirm-CertAgentRotation -Id 'r1' -Note 'x'
            } catch {
                $caught = $_
            }
            $caught | Should -Not -BeNullOrEmpty
            $caught.FullyQualifiedErrorId | Should -BeLike 'invalid_state*'
            $caught.CategoryInfo.Category | Should -Be 'InvalidOperation'
            $caught.CategoryInfo.Reason | Should -Be 'invalid_state'
            $caught.TargetObject.Code | Should -Be 'invalid_state'
            $caught.TargetObject.Status | Should -Be 409
            $caught.TargetObject.Detail | Should -Be 'rotation r1 is confirmed'
            $caught.Exception.Data['Code'] | Should -Be 'invalid_state'
            $caught.Exception.Message | Should -Be 'rotation r1 is confirmed (invalid_state)'
        }

        It 'maps a problem (Windows PowerShell 5.1 shape: the response stream)' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                throw (New-FakeHttpError -StatusCode 404 -Body (New-ProblemJson -Status 404 -Code 'not_found' -Detail 'no rotation r9') -WindowsPowerShell)
            }
            $caught = $null
            try {
                Get-CertAgentRotation -Id 'r9'
            } catch {
                $caught = $_
            }
            $caught.FullyQualifiedErrorId | Should -BeLike 'not_found*'
            $caught.CategoryInfo.Category | Should -Be 'ObjectNotFound'
            $caught.TargetObject.Detail | Should -Be 'no rotation r9'
        }

        It 'stops a script with -ErrorAction Stop and is silent with SilentlyContinue' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                throw (New-FakeHttpError -StatusCode 401 -Body (New-ProblemJson -Status 401 -Code 'unauthorized' -Detail 'bad token'))
            }
            { Get-CertAgentStatus -ErrorAction Stop } | Should -Throw -ExpectedMessage 'bad token (unauthorized)'
        }

        It 'says the agent cannot be reached when nothing answers' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith { throw (New-FakeHttpError -StatusCode 0) }
            $caught = $null
            try {
                Get-CertAgentStatus
            } catch {
                $caught = $_
            }
            $caught.FullyQualifiedErrorId | Should -BeLike 'agent_unreachable*'
            $caught.CategoryInfo.Category | Should -Be 'ConnectionError'
        }
    }

    Context 'Submit-CertAgentCertificate' {
        BeforeEach {
            $pem = "-----BEGIN CERTIFICATE-----`nMIIB`n-----END CERTIFICATE-----`n"
            Set-Content -LiteralPath (Join-Path -Path $TestDrive -ChildPath 'new.cer') -Value $pem -NoNewline
            Set-Content -LiteralPath (Join-Path -Path $TestDrive -ChildPath 'expired.cer') -Value $pem -NoNewline
            [System.IO.File]::WriteAllBytes((Join-Path -Path $TestDrive -ChildPath 'binary.der'), [byte[]] @(0x30, 0x82, 0x01, 0x0A, 0x00, 0xFF))
            [System.IO.File]::WriteAllBytes((Join-Path -Path $TestDrive -ChildPath 'secret.pfx'), [byte[]] @(0x30, 0x82))
            [System.IO.File]::WriteAllBytes((Join-Path -Path $TestDrive -ChildPath 'empty.cer'), [byte[]] @())

            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                $sent = Get-BodyJson $Body
                if ($sent.fileName -eq 'expired.cer') {
                    $problem = '{"type":"urn:certagent:problem:expired","title":"Certificate refused","status":422,"detail":"the certificate expired on 2026-01-01","code":"expired","certificate":{"thumbprint":"A1","subject":"CN=old","notAfter":"2026-01-01T00:00:00Z"}}'
                    throw (New-FakeHttpError -StatusCode 422 -Body $problem)
                }
                New-FakeResponse -StatusCode 201 -Body (New-RotationJson -Id 'new1' -State 'applying')
            } -ParameterFilter { $Method -eq 'POST' -and "$Uri" -like '*/api/v1/rotations' }
        }

        It 'returns a verdict per file from Get-ChildItem, refusals included' {
            $verdicts = @(Get-ChildItem -LiteralPath $TestDrive -File | Sort-Object -Property 'Name' | Submit-CertAgentCertificate)
            $verdicts.Count | Should -Be 5
            foreach ($v in $verdicts) {
                $v.PSObject.TypeNames | Should -Contain 'CertAgent.Verdict'
            }
            $byName = @{}
            foreach ($v in $verdicts) {
                $byName[$v.FileName] = $v
            }
            $byName['new.cer'].Accepted | Should -BeTrue
            $byName['new.cer'].Created | Should -BeTrue
            $byName['new.cer'].RotationId | Should -Be 'new1'
            $byName['expired.cer'].Accepted | Should -BeFalse
            $byName['expired.cer'].Code | Should -Be 'expired'
            $byName['expired.cer'].Subject | Should -Be 'CN=old'
            $byName['secret.pfx'].Code | Should -Be 'contains_private_key'
            $byName['empty.cer'].Code | Should -Be 'not_a_certificate'
            $byName['binary.der'].Accepted | Should -BeTrue
        }

        It 'never sends a .pfx, and sends DER as base64 and PEM as text' {
            Get-ChildItem -LiteralPath $TestDrive -File | Submit-CertAgentCertificate | Out-Null
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 0 -Exactly -ParameterFilter { (Get-BodyJson $Body).fileName -eq 'secret.pfx' }
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { (Get-BodyJson $Body).certificate -eq 'MIIBCgD/' }
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { (Get-BodyJson $Body).certificate -like '-----BEGIN CERTIFICATE-----*' }
        }

        It 'submits nothing with -WhatIf' {
            Submit-CertAgentCertificate -Path (Join-Path -Path $TestDrive -ChildPath '*.cer') -WhatIf
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 0 -Exactly
        }

        It 'sends the signature beside a file, or the one given, with the certificate exact' {
            $dir = Join-Path -Path $TestDrive -ChildPath 'signed'
            New-Item -ItemType Directory -Path $dir | Out-Null
            $cer = Join-Path -Path $dir -ChildPath 'new.cer'
            [System.IO.File]::WriteAllBytes($cer, [byte[]] (@(0xEF, 0xBB, 0xBF) + [System.Text.Encoding]::ASCII.GetBytes($pem)))
            Set-Content -LiteralPath ($cer + '.sig') -Value 'MEUCIQDsignature' -NoNewline
            $binarySig = Join-Path -Path $dir -ChildPath 'binary.sig'
            [System.IO.File]::WriteAllBytes($binarySig, [byte[]] @(0x30, 0x45, 0x02))

            Submit-CertAgentCertificate -LiteralPath $cer | Out-Null
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter {
                $sent = Get-BodyJson $Body
                $sent.signature -eq 'MEUCIQDsignature' -and $sent.certificate.StartsWith([string][char] 0xFEFF)
            }
            Submit-CertAgentCertificate -LiteralPath $cer -Signature $binarySig | Out-Null
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { (Get-BodyJson $Body).signature -eq 'MEUC' }
        }

        It 'refuses -Signature for several files' {
            { Submit-CertAgentCertificate -Path (Join-Path -Path $TestDrive -ChildPath '*.cer') -Signature 'x.sig' } | Should -Throw -ErrorId 'invalid_request*'
        }
    }

    Context 'Get-CertAgentAuditLog' {
        BeforeEach {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                New-FakeResponse -Body '{"items":[{"seq":5,"at":"2026-11-25T19:30:05Z","action":"rotation.state","actor":"agent","outcome":"ok"},{"seq":4,"at":"2026-11-25T19:30:04Z","action":"graph.write","actor":"agent","outcome":"ok"}],"next":4}'
            } -ParameterFilter { "$Uri" -notlike '*before=*' }
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                New-FakeResponse -Body '{"items":[{"seq":3,"at":"2026-11-20T10:00:00Z","action":"intake.accepted","actor":"intake","outcome":"ok"},{"seq":2,"at":"2026-11-10T10:00:00Z","action":"rotation.state","actor":"api:CONTOSO\\admin","outcome":"ok"},{"seq":1,"at":"2026-11-01T10:00:00Z","action":"intake.refused","actor":"intake","outcome":"refused","code":"expired"}]}'
            } -ParameterFilter { "$Uri" -like '*before=4*' }
        }

        It 'follows the next cursor to the end' {
            $entries = @(Get-CertAgentAuditLog)
            $entries.Count | Should -Be 5
            ($entries | ForEach-Object { $_.Seq }) -join ',' | Should -Be '5,4,3,2,1'
            $entries[0].PSObject.TypeNames | Should -Contain 'CertAgent.AuditEntry'
            $entries[0].At | Should -BeOfType [datetime]
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 2 -Exactly
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { "$Uri" -like '*/api/v1/audit?before=4&limit=100' }
        }

        It 'stops after -First entries' {
            $entries = @(Get-CertAgentAuditLog -First 3)
            $entries.Count | Should -Be 3
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { "$Uri" -like '*/api/v1/audit?limit=3' }
        }

        It 'stops at entries older than -Since' {
            $entries = @(Get-CertAgentAuditLog -Since ([datetime]::new(2026, 11, 15, 0, 0, 0, [System.DateTimeKind]::Utc)))
            ($entries | ForEach-Object { $_.Seq }) -join ',' | Should -Be '5,4,3'
        }
    }

    Context 'the agent''s credential and scans' {
        It 'Get-CertAgentCredential returns a CertAgent.Credential' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith {
                New-FakeResponse -Body '{"method":"certificate","clientId":"c1","thumbprint":"FF","subject":"CN=certagent","notBefore":"2026-11-24T19:30:00Z","notAfter":"2027-05-01T00:00:00Z","nextRenewal":"2027-04-01T00:00:00Z","daysRemaining":156}'
            }
            $credential = Get-CertAgentCredential
            $credential.PSObject.TypeNames | Should -Contain 'CertAgent.Credential'
            $credential.NextRenewal | Should -BeOfType [datetime]
        }

        It 'Update-CertAgentCredential posts credential/rotate, and nothing with -WhatIf' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith { New-FakeResponse -StatusCode 202 -Body '{"message":"renewal started"}' }
            Update-CertAgentCredential -WhatIf
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 0 -Exactly
            $answer = Update-CertAgentCredential -PassThru -Confirm:$false
            $answer.Message | Should -Be 'renewal started'
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { $Method -eq 'POST' -and "$Uri" -like '*/api/v1/credential/rotate' }
        }

        It 'Start-CertAgentScan posts scan and outputs nothing without -PassThru' {
            Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith { New-FakeResponse -StatusCode 202 -Body '{"message":"drop folder rescan queued"}' }
            @(Start-CertAgentScan).Count | Should -Be 0
            (Start-CertAgentScan -PassThru).Message | Should -Be 'drop folder rescan queued'
            Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 2 -Exactly -ParameterFilter { $Method -eq 'POST' -and "$Uri" -like '*/api/v1/scan' }
        }
    }
}

Describe 'the API token' {
    BeforeEach {
        Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith { New-FakeResponse -Body (Get-StatusJson) }
    }

    It 'an unreadable token file says to run elevated (Windows) or as root, in words' {
        # A folder cannot be read as a file: access denied, as for a token file of the service.
        Connect-CertAgent -BaseUri $script:Base -TokenPath $TestDrive -SkipCheck | Out-Null
        $caught = $null
        try {
            Get-CertAgentStatus
        } catch {
            $caught = $_
        }
        $caught.FullyQualifiedErrorId | Should -BeLike 'token_access_denied*'
        $caught.CategoryInfo.Category | Should -Be 'PermissionDenied'
        if ([System.Environment]::OSVersion.Platform -eq [System.PlatformID]::Win32NT) {
            $caught.Exception.Message | Should -BeLike '*run PowerShell as Administrator (elevated)*'
        } else {
            $caught.Exception.Message | Should -BeLike '*run as root*'
        }
        $caught.ScriptStackTrace | Should -Not -BeLike '*ReadAllText*'
        Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 0 -Exactly
    }

    It 'a missing token file says the agent creates it when it starts' {
        Connect-CertAgent -BaseUri $script:Base -TokenPath (Join-Path -Path $TestDrive -ChildPath 'missing.token') -SkipCheck | Out-Null
        { Get-CertAgentStatus } | Should -Throw -ExpectedMessage '*does not exist*agent creates it when it starts*'
    }

    It 'an empty token file says to restart the agent' {
        $file = Join-Path -Path $TestDrive -ChildPath 'empty.token'
        Set-Content -LiteralPath $file -Value '  '
        Connect-CertAgent -BaseUri $script:Base -TokenPath $file -SkipCheck | Out-Null
        { Get-CertAgentStatus } | Should -Throw -ExpectedMessage '*is empty*'
    }

    It 'reads the token file and trims it' {
        $file = Join-Path -Path $TestDrive -ChildPath 'api.token'
        Set-Content -LiteralPath $file -Value "file-token`r`n"
        Connect-CertAgent -BaseUri $script:Base -TokenPath $file | Out-Null
        Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { $Headers['Authorization'] -eq 'Bearer file-token' }
    }

    It 'a command''s own -Token wins over the session' {
        Connect-CertAgent -BaseUri $script:Base -TokenPath (Join-Path -Path $TestDrive -ChildPath 'missing.token') -SkipCheck | Out-Null
        Get-CertAgentStatus -Token (ConvertTo-SecureString -String 'own' -AsPlainText -Force) | Out-Null
        Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { $Headers['Authorization'] -eq 'Bearer own' }
    }
}

Describe 'finding the installed agent' {
    BeforeEach {
        $script:Config = Join-Path -Path $TestDrive -ChildPath 'certagent.yaml'
        Set-Content -LiteralPath $script:Config -Value @(
            '# certagent configuration',
            'tenant_id: "11111111-1111-1111-1111-111111111111"',
            'api:',
            '  # host:port on a loopback address',
            '  listen: "127.0.0.1:9000"   # not the default',
            "  token_file: 'tokens/api.token'",
            'state_dir: ""'
        )
        $tokens = Join-Path -Path $TestDrive -ChildPath 'tokens'
        New-Item -ItemType Directory -Path $tokens -Force | Out-Null
        Set-Content -LiteralPath (Join-Path -Path $tokens -ChildPath 'api.token') -Value 'config-token'
        Mock -ModuleName 'CertAgent' -CommandName 'Invoke-WebRequest' -MockWith { New-FakeResponse -Body (Get-StatusJson) }
    }

    It 'reads api.listen and api.token_file from the config, relative to its folder' {
        InModuleScope -ModuleName 'CertAgent' -Parameters @{ Config = $script:Config } -ScriptBlock {
            param($Config)
            $c = Read-CertAgentConfigFile -Path $Config
            $c.Listen | Should -Be '127.0.0.1:9000'
            $c.TokenFile | Should -Be ([System.IO.Path]::GetFullPath((Join-Path -Path (Split-Path -Path $Config -Parent) -ChildPath 'tokens/api.token')))
        }
    }

    It 'connects with the config the registry names' {
        Mock -ModuleName 'CertAgent' -CommandName 'Get-CertAgentRegistry' -MockWith { @{ ConfigFile = $script:Config; ApiPort = '9999' } }
        $connection = Connect-CertAgent
        $connection.BaseUri | Should -Be 'http://127.0.0.1:9000'
        $connection.AgentVersion | Should -Be '1.2.3'
        Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter {
            "$Uri" -eq 'http://127.0.0.1:9000/api/v1/status' -and $Headers['Authorization'] -eq 'Bearer config-token'
        }
    }

    It 'falls back to the registry''s ApiPort and TokenFile when the config cannot be read' {
        $token = Join-Path -Path $TestDrive -ChildPath 'registry.token'
        Set-Content -LiteralPath $token -Value 'registry-token'
        Mock -ModuleName 'CertAgent' -CommandName 'Get-CertAgentRegistry' -MockWith {
            @{ ConfigFile = (Join-Path -Path $TestDrive -ChildPath 'nowhere.yaml'); ApiPort = '9100'; TokenFile = $token }
        }
        $connection = Connect-CertAgent
        $connection.BaseUri | Should -Be 'http://127.0.0.1:9100'
        Should -Invoke -CommandName 'Invoke-WebRequest' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter { $Headers['Authorization'] -eq 'Bearer registry-token' }
    }

    It 'uses the product defaults without a config or registry values' {
        Mock -ModuleName 'CertAgent' -CommandName 'Get-CertAgentRegistry' -MockWith { @{} }
        Mock -ModuleName 'CertAgent' -CommandName 'Get-CertAgentDefaultPath' -MockWith {
            [pscustomobject]@{ ConfigFile = (Join-Path -Path $TestDrive -ChildPath 'nowhere.yaml'); StateDir = (Join-Path -Path $TestDrive -ChildPath 'state') }
        }
        $connection = Connect-CertAgent -SkipCheck
        $connection.BaseUri | Should -Be 'http://127.0.0.1:8471'
        $connection.TokenPath | Should -Be (Join-Path -Path (Join-Path -Path $TestDrive -ChildPath 'state') -ChildPath 'api.token')
    }

    It 'Connect-CertAgent -ConfigFile takes another agent''s config (certagent dev)' {
        $connection = Connect-CertAgent -ConfigFile $script:Config
        $connection.BaseUri | Should -Be 'http://127.0.0.1:9000'
        $connection.ConfigFile | Should -Be ((Resolve-Path -LiteralPath $script:Config).ProviderPath)
    }
}

Describe 'running certagent itself' {
    BeforeEach {
        Mock -ModuleName 'CertAgent' -CommandName 'Find-CertAgentExe' -MockWith { 'C:\Program Files\CertAgent\certagent.exe' }
    }

    It 'Test-CertAgentCertificate turns inspect --json lines into verdicts' {
        $a = Join-Path -Path $TestDrive -ChildPath 'a.cer'
        $b = Join-Path -Path $TestDrive -ChildPath 'b.cer'
        Set-Content -LiteralPath $a -Value 'x'
        Set-Content -LiteralPath $b -Value 'y'
        Mock -ModuleName 'CertAgent' -CommandName 'Invoke-CertAgentExe' -MockWith {
            [pscustomobject]@{
                ExitCode  = 1
                Output    = @(
                    (ConvertTo-Json -Compress -InputObject @{ file = $a; verdict = 'accepted'; certificate = @{ thumbprint = 'A1'; subject = 'CN=a'; notAfter = '2027-11-01T00:00:00Z' } }),
                    (ConvertTo-Json -Compress -InputObject @{ file = $b; verdict = 'rejected'; reason = @{ code = 'not_a_certificate'; message = 'nothing parses' } })
                )
                ErrorText = ''
            }
        }
        $verdicts = @(Test-CertAgentCertificate -Path $a, $b -DefaultPolicy)
        $verdicts.Count | Should -Be 2
        $verdicts[0].Accepted | Should -BeTrue
        $verdicts[0].NotAfter | Should -BeOfType [datetime]
        $verdicts[1].Code | Should -Be 'not_a_certificate'
        $verdicts[1].Source | Should -Be 'inspect'
        Should -Invoke -CommandName 'Invoke-CertAgentExe' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter {
            $ArgumentList[0] -eq 'inspect' -and $ArgumentList[1] -eq '--json' -and $ArgumentList -notcontains '-c'
        }
    }

    It 'Test-CertAgentCertificate fails on a usage error (exit code 2)' {
        $a = Join-Path -Path $TestDrive -ChildPath 'a.cer'
        Set-Content -LiteralPath $a -Value 'x'
        Mock -ModuleName 'CertAgent' -CommandName 'Invoke-CertAgentExe' -MockWith { [pscustomobject]@{ ExitCode = 2; Output = @(); ErrorText = 'usage' } }
        { Test-CertAgentCertificate -Path $a -DefaultPolicy } | Should -Throw -ExpectedMessage '*exit code 2*'
    }

    It 'Initialize-CertAgent passes its parameters to certagent setup' {
        Mock -ModuleName 'CertAgent' -CommandName 'Invoke-CertAgentExe' -MockWith { [pscustomobject]@{ ExitCode = 0; Output = @(); ErrorText = '' } }
        Initialize-CertAgent -Tenant 'contoso.onmicrosoft.com' -ProviderApp 'Veeam Backup' -AgentName 'certagent' -Yes -DryRun -UseAz -Confirm:$false
        Should -Invoke -CommandName 'Invoke-CertAgentExe' -ModuleName 'CertAgent' -Times 1 -Exactly -ParameterFilter {
            ($ArgumentList -join '|') -eq 'setup|--tenant|contoso.onmicrosoft.com|--provider-app|Veeam Backup|--agent-name|certagent|--yes|--dry-run|--use-az' -and $Interactive
        }
    }

    It 'Initialize-CertAgent runs nothing with -WhatIf and fails on a non-zero exit code' {
        Mock -ModuleName 'CertAgent' -CommandName 'Invoke-CertAgentExe' -MockWith { [pscustomobject]@{ ExitCode = 1; Output = @(); ErrorText = '' } }
        Initialize-CertAgent -Tenant 'contoso.onmicrosoft.com' -WhatIf
        Should -Invoke -CommandName 'Invoke-CertAgentExe' -ModuleName 'CertAgent' -Times 0 -Exactly
        { Initialize-CertAgent -Tenant 'contoso.onmicrosoft.com' -Confirm:$false } | Should -Throw -ExpectedMessage '*exit code 1*'
    }

    It 'quotes arguments as Windows programs split them' {
        InModuleScope -ModuleName 'CertAgent' -ScriptBlock {
            ConvertTo-CertAgentArgumentString -ArgumentList @('inspect', 'C:\My Certs\a.cer', 'say "hi"', '', 'C:\dir with space\') |
                Should -Be 'inspect "C:\My Certs\a.cer" "say \"hi\"" "" "C:\dir with space\\"'
        }
    }
}
