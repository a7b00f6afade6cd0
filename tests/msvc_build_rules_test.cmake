# cmake -DSOURCE_DIR=<portres> -P msvc_build_rules_test.cmake
# The MSVC build rules of cmake/PortresMsvc.cmake, checked on any host (the
# project's own runs have no MSVC): which C++ runtime the library takes, that a
# DLL is never asked of MSVC, and that the installed package refuses a
# consumer on the other runtime with a message saying what to do.
cmake_minimum_required(VERSION 3.25)
include(${SOURCE_DIR}/cmake/PortresMsvc.cmake)
function(expect_equal what actual expected)
  if(actual STREQUAL expected)
    message(STATUS "ok: ${what}")
  else()
    message(SEND_ERROR "FAIL: ${what}: '${actual}', expected '${expected}'")
  endif()
endfunction()

# The library's runtime when the user names none: CMake's default (/MD), or
# the vcpkg triplet's CRT linkage.
set(MSVC 1)
foreach(case "|dynamic" "x64-windows|dynamic" "x64-windows-static|static" "x64-windows-static-md|dynamic"
             "x64-windows-static-release|static" "arm64-windows|dynamic")
  string(REPLACE "|" ";" case "${case}")
  list(GET case 0 triplet)
  list(GET case 1 expected)
  set(VCPKG_TARGET_TRIPLET "${triplet}")
  portres_msvc_default_runtime(runtime)
  portres_msvc_runtime_linkage(linkage "${runtime}")
  expect_equal("triplet '${triplet}' gives the library the ${expected} runtime" "${linkage}" "${expected}")
endforeach()
# The user's own choice wins over the triplet.
set(VCPKG_TARGET_TRIPLET x64-windows-static)
set(CMAKE_MSVC_RUNTIME_LIBRARY "MultiThreaded$<$<CONFIG:Debug>:Debug>DLL")
portres_msvc_default_runtime(runtime)
expect_equal("CMAKE_MSVC_RUNTIME_LIBRARY wins over the triplet" "${runtime}" "${CMAKE_MSVC_RUNTIME_LIBRARY}")
foreach(case "MultiThreaded|static" "MultiThreadedDebug|static" "MultiThreadedDLL|dynamic"
             "MultiThreaded$<$<CONFIG:Debug>:Debug>|static" "MultiThreaded$<$<CONFIG:Debug>:Debug>DLL|dynamic")
  string(REPLACE "|" ";" case "${case}")
  list(GET case 0 value)
  list(GET case 1 expected)
  portres_msvc_runtime_linkage(linkage "${value}")
  expect_equal("${value} is the ${expected} runtime" "${linkage}" "${expected}")
endforeach()
unset(CMAKE_MSVC_RUNTIME_LIBRARY)

# No DLL from MSVC (no dllexport, so no import library); elsewhere the user decides.
set(BUILD_SHARED_LIBS ON)
portres_msvc_library_type(type)
expect_equal("MSVC with BUILD_SHARED_LIBS builds a static library" "${type}" "STATIC")
set(MSVC 0)
portres_msvc_library_type(type)
expect_equal("GCC/MinGW keep BUILD_SHARED_LIBS" "${type}" "")
set(MSVC 1)

# The installed package against its consumer's CMAKE_MSVC_RUNTIME_LIBRARY.
portres_msvc_check_consumer(static ok text)
expect_equal("a /MT portres refuses a consumer on CMake's default /MD" "${ok}" "FALSE")
if(NOT text MATCHES "static C\\+\\+ runtime.*dynamic one.*LNK2038.*MultiThreaded")
  message(SEND_ERROR "FAIL: the refusal names both runtimes, LNK2038 and the setting to use: ${text}")
endif()
set(CMAKE_MSVC_RUNTIME_LIBRARY "MultiThreaded$<$<CONFIG:Debug>:Debug>")
portres_msvc_check_consumer(static ok text)
expect_equal("a /MT portres accepts a /MT consumer" "${ok}" "TRUE")
portres_msvc_check_consumer(dynamic ok text)
expect_equal("a /MD portres refuses a /MT consumer" "${ok}" "FALSE")
unset(CMAKE_MSVC_RUNTIME_LIBRARY)
portres_msvc_check_consumer(dynamic ok text)
expect_equal("a /MD portres accepts a consumer on CMake's default" "${ok}" "TRUE")
portres_msvc_check_consumer("" ok text)
expect_equal("a portres built without MSVC (MinGW) sets no rule" "${ok}" "TRUE")

# The installed package applies the rule with the runtime the build recorded.
file(READ ${SOURCE_DIR}/cmake/portresConfig.cmake.in config)
if(NOT config MATCHES "@PORTRES_MSVC_RUNTIME@" OR NOT config MATCHES "portres_msvc_check_consumer")
  message(SEND_ERROR "FAIL: portresConfig.cmake records the build's runtime and checks the consumer's")
endif()
