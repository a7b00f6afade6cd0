// Whether this process runs under Wine, which implements some Winsock
// extensions only in part (see the notes on the Windows build).
#ifndef PORTRES_SRC_WIN_WINE_HPP
#define PORTRES_SRC_WIN_WINE_HPP

#include <string>

#include <windows.h>

namespace portres::detail::win {

/// Wine's version ("8.0"), or empty on Windows.
std::string wine_version();

/// An iphlpapi.dll export by name (through the Winsock seam), or null.
FARPROC iphlpapi_function(const char* name);

/// An export of a DLL loaded from System32 only (LOAD_LIBRARY_SEARCH_SYSTEM32),
/// or null. The module stays loaded.
FARPROC system_function(const wchar_t* dll, const char* name);

} // namespace portres::detail::win

#endif
