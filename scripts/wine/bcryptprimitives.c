/*
 * bcryptprimitives.dll for Wine 8.0: a test fixture, never shipped.
 *
 * Since Go 1.22 the Windows runtime loads bcryptprimitives.dll from System32 and calls its
 * ProcessPrng at start-up (and crypto/rand calls it for every read). Wine 8.0 has no such DLL,
 * so every Go >= 1.22 program dies with "fatal error: bcryptprimitives.dll not found".
 * This DLL exports ProcessPrng and fills the buffer with advapi32's RtlGenRandom
 * (SystemFunction036), which Wine implements from the host's random source.
 *
 * scripts/wine-test.sh builds it with
 *   x86_64-w64-mingw32-gcc -shared -O2 -s -nostdlib -Wl,--entry,DllMain \
 *       -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 * (no C runtime: the DLL imports only SystemFunction036) and copies it into the prefix's
 * windows/system32.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}

/*
 * ProcessPrng fills data with len random bytes. The real one never fails and always
 * returns TRUE; RtlGenRandom takes a ULONG length, so larger requests go in slices.
 */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
