# cmake -DEXE=portres.exe -DOBJDUMP=x86_64-w64-mingw32-objdump -P check_static.cmake
# portres.exe must run on a Windows machine by itself: it may import only
# system DLLs, not MinGW's runtime (libstdc++, libgcc, libwinpthread).
execute_process(COMMAND ${OBJDUMP} -p ${EXE} OUTPUT_VARIABLE dump RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${OBJDUMP} -p ${EXE} failed (${rc})")
endif()
string(REGEX MATCHALL "DLL Name: [^\n]+" imports "${dump}")
message(STATUS "imports: ${imports}")
if(NOT imports)
  message(FATAL_ERROR "no import table found in ${EXE}")
endif()
foreach(line IN LISTS imports)
  if(line MATCHES "libstdc\\+\\+|libgcc|libwinpthread|libssp")
    message(FATAL_ERROR "${EXE} depends on a MinGW runtime DLL: ${line}")
  endif()
endforeach()
