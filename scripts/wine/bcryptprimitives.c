/*
 * A one-function bcryptprimitives.dll for Wine 8.0 (Debian 12), which lacks it.
 *
 * Rust's standard library on x86_64-pc-windows-gnu imports ProcessPrng from
 * bcryptprimitives.dll; without the DLL every test binary dies at load (exit code 53, no
 * output). This stub answers ProcessPrng from advapi32's RtlGenRandom (SystemFunction036),
 * which Wine has. scripts/test-windows.sh builds it with mingw-w64 and installs it into the
 * private Wine prefix only; it is never shipped or used on real Windows.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
