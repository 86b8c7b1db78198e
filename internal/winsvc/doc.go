// Package winsvc tests certagent's Windows service and MSI under Wine, from the Linux side:
// it builds certagent.exe, installs it in a fresh Wine prefix (with `certagent install`, or
// with msiexec and the MSI `make msi` builds), runs the emulated tenant in the test process,
// and checks what Windows would show: `sc query`, the registry, the API on 127.0.0.1, the
// drop folder and the emulated app.
//
// The tests are opt-in: they run when CERTAGENT_WINE=1 (`make test-wine-service`, part of
// `make test`), and are skipped otherwise and under -short. What Wine cannot show (access
// lists, recovery actions carried out, delayed start) is checked in the registry and the
// MSI's tables, and said so in the test log.
package winsvc
