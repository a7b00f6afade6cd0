# What an MSVC build of portres decides, kept apart so the rules can be checked
# on any host (tests/msvc_rules_test.cmake) and so the installed package can
# apply the same rule to its consumer (installed beside portresConfig.cmake).
#
# The C++ runtime (/MT static, /MD DLL) must be the same in a library and in
# every program linking it (else LNK2038). The library therefore follows the
# user's choice: CMAKE_MSVC_RUNTIME_LIBRARY, else the vcpkg triplet's
# VCPKG_CRT_LINKAGE (by vcpkg's naming: *-static and *-static-release are
# static; *-static-md and the plain triplets are DLL), else CMake's default
# (DLL). Only portres.exe picks the static runtime for itself.
include_guard(GLOBAL)

set(PORTRES_MSVC_STATIC_RUNTIME "MultiThreaded$<$<CONFIG:Debug>:Debug>")

# portres_msvc_runtime_linkage(VAR RUNTIME): "static" or "dynamic" for a value
# of MSVC_RUNTIME_LIBRARY (empty: CMake's default, MultiThreaded...DLL).
function(portres_msvc_runtime_linkage var runtime)
  if(runtime STREQUAL "" OR runtime MATCHES "DLL")
    set(${var} dynamic PARENT_SCOPE)
  else()
    set(${var} static PARENT_SCOPE)
  endif()
endfunction()

# portres_msvc_default_runtime(VAR): the runtime a top-level build gives its
# targets when the user set none: the vcpkg triplet's, else empty (CMake's
# default, the DLL runtime). A set CMAKE_MSVC_RUNTIME_LIBRARY is returned as is.
function(portres_msvc_default_runtime var)
  if(DEFINED CMAKE_MSVC_RUNTIME_LIBRARY)
    set(runtime "${CMAKE_MSVC_RUNTIME_LIBRARY}")
  elseif(VCPKG_TARGET_TRIPLET MATCHES "-static(-release)?$")
    set(runtime "${PORTRES_MSVC_STATIC_RUNTIME}")
  else()
    set(runtime "")
  endif()
  set(${var} "${runtime}" PARENT_SCOPE)
endfunction()

# portres_msvc_library_type(VAR): the library's type. portres marks no symbol
# __declspec(dllexport), so an MSVC DLL of it would come without an import
# library: with MSVC it is always STATIC (MinGW and Linux export everything).
function(portres_msvc_library_type var)
  if(MSVC AND BUILD_SHARED_LIBS)
    message(STATUS "portres: BUILD_SHARED_LIBS is ON, but portres exports no symbols from a DLL: "
                   "with MSVC it is built as a static library")
    set(${var} STATIC PARENT_SCOPE)
  else()
    set(${var} "" PARENT_SCOPE) # add_library's default (BUILD_SHARED_LIBS)
  endif()
endfunction()

# portres_msvc_check_consumer(BUILT_LINKAGE OK_VAR MESSAGE_VAR): for the
# installed package: does the consumer's CMAKE_MSVC_RUNTIME_LIBRARY (read when
# find_package(portres) runs) agree with the runtime portres was built with?
function(portres_msvc_check_consumer built ok_var message_var)
  set(${ok_var} TRUE PARENT_SCOPE)
  if(NOT MSVC OR NOT built)
    return()
  endif()
  portres_msvc_runtime_linkage(wanted "${CMAKE_MSVC_RUNTIME_LIBRARY}")
  if(CMAKE_MSVC_RUNTIME_LIBRARY)
    set(setting "CMAKE_MSVC_RUNTIME_LIBRARY is '${CMAKE_MSVC_RUNTIME_LIBRARY}'")
  else()
    set(setting "CMAKE_MSVC_RUNTIME_LIBRARY is unset: CMake's default, /MD")
  endif()
  if(NOT wanted STREQUAL built)
    if(built STREQUAL "static")
      set(fix "set CMAKE_MSVC_RUNTIME_LIBRARY to MultiThreaded$<$<CONFIG:Debug>:Debug> (/MT) before find_package(portres), with a *-windows-static vcpkg triplet")
    else()
      set(fix "leave CMAKE_MSVC_RUNTIME_LIBRARY unset or use MultiThreaded$<$<CONFIG:Debug>:Debug>DLL (/MD), with a DLL-runtime vcpkg triplet (x64-windows, x64-windows-static-md)")
    endif()
    set(${ok_var} FALSE PARENT_SCOPE)
    set(${message_var} "portres was built with the ${built} C++ runtime, and this project links the ${wanted} one "
        "(${setting}); the linker would stop with LNK2038. "
        "Either ${fix}, or rebuild portres with this project's runtime." PARENT_SCOPE)
  endif()
endfunction()
