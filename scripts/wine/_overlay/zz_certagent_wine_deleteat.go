// This file is not part of certagent. scripts/wine-test.sh adds it to the standard library's
// internal/syscall/windows package with `go test -overlay`, for the test binaries it runs
// under Wine, and nowhere else (the leading underscore keeps it out of ./...).
//
// Wine 8.0's NtSetInformationFile does not implement FileDispositionInformationEx (64): it
// answers STATUS_NOT_IMPLEMENTED, which Deleteat does not treat as "unsupported, use the
// fallback" (it does for STATUS_INVALID_INFO_CLASS, STATUS_INVALID_PARAMETER and
// STATUS_NOT_SUPPORTED). So os.RemoveAll, os.Root.Remove and every t.TempDir cleanup fail
// under Wine with "unlinkat ...: Invalid function." Using the fallback (FileDispositionInfo,
// the pre-Windows-10-1607 delete, which Wine implements) keeps those results meaningful. The
// fallback is stricter than real Windows, never looser: a file still open elsewhere stays
// "delete pending" instead of vanishing at once (no POSIX semantics).

package windows

func init() { TestDeleteatFallback = true }
