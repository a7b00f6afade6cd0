# cmake -DEXE=portres.exe -DOBJDUMP=x86_64-w64-mingw32-objdump -P check_static.cmake
cmake_minimum_required(VERSION 3.16)
# portres.exe must run on a Windows machine by itself, from any folder, also
# elevated: it may import only Windows' KnownDLLs, which the loader never
# looks for beside the program (a DLL planted there would be loaded first),
# and so no MinGW runtime DLL (libstdc++, libgcc, libwinpthread), no
# iphlpapi.dll (loaded at run time from System32) and no mswsock.dll.
execute_process(COMMAND ${OBJDUMP} -p ${EXE} OUTPUT_VARIABLE dump RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${OBJDUMP} -p ${EXE} failed (${rc})")
endif()
string(REGEX MATCHALL "DLL Name: [^\n]+" imports "${dump}")
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
  if(NOT base IN_LIST known)
    message(FATAL_ERROR "${EXE} imports ${dll}, which is not one of Windows' KnownDLLs: a copy planted beside it would load")
  endif()
endforeach()
