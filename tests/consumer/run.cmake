# Installs the built portres into a scratch prefix, then builds and runs the
# consumer (main.cpp) against it: as a CMake project with find_package(portres),
# or, where PKG_CONFIG is given, with the compiler alone and the flags of
# `pkg-config --cflags --libs portres`.
#   CONSUMER_ARGS      configure arguments for the CMake consumer, '|'-separated
#   CONSUMER_EMULATOR  runs a cross-built consumer, '|'-separated
set(prefix ${WORK_DIR}/prefix)
if(NOT LIBDIR)
  set(LIBDIR lib)
endif()
file(REMOVE_RECURSE ${WORK_DIR})
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Debug)
endif()
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer step failed (${rc}): ${ARGN}")
  endif()
endfunction()
string(REPLACE "|" ";" consumer_args "${CONSUMER_ARGS}")
string(REPLACE "|" ";" emulator "${CONSUMER_EMULATOR}") # empty: run natively

run(${CMAKE_COMMAND} --install ${PORTRES_BUILD_DIR} --prefix ${prefix} --config ${BUILD_TYPE})

# MSVC's Debug library is portresd.lib, so a Debug and a Release install share
# a prefix (MinGW and Linux name theirs libportres.a in both).
file(GLOB msvc_libs RELATIVE ${prefix}/${LIBDIR} ${prefix}/${LIBDIR}/*.lib)
if(msvc_libs)
  if(BUILD_TYPE STREQUAL "Debug")
    set(expected_lib portresd.lib)
  else()
    set(expected_lib portres.lib)
  endif()
  if(NOT msvc_libs STREQUAL expected_lib)
    message(FATAL_ERROR "consumer: a ${BUILD_TYPE} install holds ${msvc_libs}, expected ${expected_lib}")
  endif()
endif()

# A package outlives its build tree: no installed package file may name it
# (the scratch prefix lies inside the build tree, so its own path is allowed).
file(GLOB_RECURSE package_files ${prefix}/*.pc ${prefix}/*.cmake)
foreach(file IN LISTS package_files)
  file(READ ${file} text)
  string(REPLACE "${prefix}" "<prefix>" text "${text}")
  string(FIND "${text}" "${PORTRES_BUILD_DIR}/" at)
  if(NOT at EQUAL -1)
    string(SUBSTRING "${text}" ${at} 160 where)
    message(FATAL_ERROR "consumer: ${file} names the build tree: ${where}")
  endif()
endforeach()

if(PKG_CONFIG)
  # The compiler with the flags portres.pc gives, nothing else.
  set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs portres
                  OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer: pkg-config --cflags --libs portres failed (${rc})")
  endif()
  message(STATUS "consumer: pkg-config --cflags --libs portres: ${flags}")
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run(${CONSUMER_CXX} -std=c++20 ${CONSUMER_SOURCE_DIR}/main.cpp ${flags} -o ${WORK_DIR}/consumer)
  run(${emulator} ${WORK_DIR}/consumer)
  message(STATUS "consumer: pkg-config build and run passed")
  return()
endif()

# find_package(portres). A cross toolchain re-roots CMAKE_PREFIX_PATH under its
# sysroot, so the config folder is named as well.
run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build ${consumer_args}
    -DCMAKE_PREFIX_PATH=${prefix} -Dportres_DIR=${prefix}/${LIBDIR}/cmake/portres -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build --config ${BUILD_TYPE})
set(exe)
foreach(candidate consumer consumer.exe ${BUILD_TYPE}/consumer.exe) # single- and multi-config
  if(NOT exe AND EXISTS ${WORK_DIR}/build/${candidate})
    set(exe ${WORK_DIR}/build/${candidate})
  endif()
endforeach()
if(NOT exe)
  message(FATAL_ERROR "consumer: no executable built in ${WORK_DIR}/build")
endif()
run(${emulator} ${exe})
message(STATUS "consumer: find_package(portres) build and run passed")
