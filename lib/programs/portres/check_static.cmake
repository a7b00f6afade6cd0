# cmake -DEXE=portres.exe -DOBJDUMP=x86_64-w64-mingw32-objdump -P check_static.cmake   (MinGW)
# cmake -DEXE=portres.exe -DDUMPBIN=dumpbin -P check_static.cmake                        (MSVC)
cmake_minimum_required(VERSION 3.16)
# portres.exe must run on a Windows machine by itself, from any folder, also
# elevated: it may import only Windows' KnownDLLs, which the loader never
# looks for beside the program (a DLL planted there would be loaded first),
# and so no compiler runtime DLL (MinGW's libstdc++, libgcc, libwinpthread;
# MSVC's VCRUNTIME, MSVCP and the Universal CRT), no iphlpapi.dll (loaded at
# run time from System32) and no mswsock.dll.
if(DUMPBIN)
  execute_process(COMMAND ${DUMPBIN} /nologo /dependents ${EXE} OUTPUT_VARIABLE dump RESULT_VARIABLE rc)
  string(REGEX MATCHALL "[^ \r\n]+\\.[dD][lL][lL]" imports "${dump}")
  list(FILTER imports EXCLUDE REGEX "portres\\.exe$")
else()
  execute_process(COMMAND ${OBJDUMP} -p ${EXE} OUTPUT_VARIABLE dump RESULT_VARIABLE rc)
  string(REGEX MATCHALL "DLL Name: [^\n]+" imports "${dump}")
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "reading the imports of ${EXE} failed (${rc})")
endif()
message(STATUS "imports: ${imports}")
if(NOT imports)
  message(FATAL_ERROR "no import table found in ${EXE}")
endif()
# HKLM\System\CurrentControlSet\Control\Session Manager\KnownDLLs (Windows 10/11).
set(known advapi32 clbcatq combase comdlg32 coml2 difxapi gdi32 gdiplus imagehlp imm32 kernel32 msctf msvcrt
    normaliz nsi ole32 oleaut32 psapi rpcrt4 sechost setupapi shcore shell32 shlwapi user32 wldap32 ws2_32)
foreach(line IN LISTS imports)
  string(REGEX REPLACE "^DLL Name: *" "" dll "${line}")
  string(STRIP "${dll}" dll)
  string(TOLOWER "${dll}" dll)
  string(REGEX REPLACE "\\.dll$" "" base "${dll}")
  if(base MATCHES "libstdc\\+\\+|libgcc|libwinpthread|libssp|vcruntime|msvcp|api-ms-win-crt|ucrtbase|concrt")
    message(FATAL_ERROR "${EXE} depends on a compiler runtime DLL: ${dll}")
  endif()
  if(NOT base IN_LIST known)
    message(FATAL_ERROR "${EXE} imports ${dll}, which is not one of Windows' KnownDLLs: a copy planted beside it would load")
  endif()
endforeach()
