// Windows programs are run elevated from wherever a user saved them (the
// README asks for an elevated `portres selftest`): a DLL of a system name
// placed beside the program, or in the current folder, must never be loaded.
// Called first in main; the library itself loads iphlpapi.dll from System32
// only and the programs import only KnownDLLs statically.
#ifndef PORTRES_PROGRAMS_CLI_DLL_SEARCH_HPP
#define PORTRES_PROGRAMS_CLI_DLL_SEARCH_HPP

#if defined(_WIN32)
#include <windows.h>
#endif

namespace cli {

/// Windows: DLLs loaded from now on come from System32 only. Elsewhere: nothing.
inline void restrict_dll_search() noexcept {
#if defined(_WIN32)
  ::SetDefaultDllDirectories(LOAD_LIBRARY_SEARCH_SYSTEM32);
#endif
}

} // namespace cli

#endif
