# The dependencies, described once and found as their own packages name them:
#   asio::asio            standalone Asio (header-only)
#   Microsoft.GSL::GSL    Microsoft GSL (header-only)
#   doctest::doctest      the tests (portres_find_dependency(doctest))
#   benchmark::benchmark  the benchmarks (optional)
# Each is looked up first as its CMake package (vcpkg, Conan, Debian's GSL,
# doctest and benchmark); a header-only one without a package (Debian's
# libasio-dev has none) is found by its header and given the package's target
# name. An explicit folder (PORTRES_ASIO_INCLUDE_DIR, PORTRES_GSL_INCLUDE_DIR)
# wins over any package: that is how a build is pointed at another Asio.
#
# Cross builds (MinGW-w64 on Linux): a header-only dependency missing from the
# target's sysroot is taken from the build host, but the cross compiler is shown
# only that package's header trees, through a folder of links in the build tree:
# pointing it at the host's /usr/include would pull in glibc's headers.
#
# The build includes this file; it is installed beside portresConfig.cmake,
# which finds Asio and GSL with it, so a consumer finds them the same way.
include_guard(GLOBAL)

# _portres_expose_host_headers(TARGET PACKAGE ENTRY...): a cross build's view
# of a host package: links to ENTRY (files or folders under the target's
# include folders) in a folder of their own, which becomes its include folder.
function(_portres_expose_host_headers target package)
  get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  set(links ${CMAKE_BINARY_DIR}/host-packages/${package})
  file(MAKE_DIRECTORY ${links})
  foreach(entry IN LISTS ARGN)
    set(found)
    foreach(dir IN LISTS dirs)
      if(NOT found AND EXISTS ${dir}/${entry})
        set(found ${dir}/${entry})
      endif()
    endforeach()
    if(NOT found)
      message(FATAL_ERROR "portres: ${entry} not found under ${target}'s folders (${dirs})")
    endif()
    file(CREATE_LINK ${found} ${links}/${entry} SYMBOLIC)
  endforeach()
  set_property(TARGET ${target} PROPERTY INTERFACE_INCLUDE_DIRECTORIES ${links})
endfunction()

# _portres_header_package(TARGET PACKAGE VAR HEADER ENTRY...): makes TARGET
# (e.g. asio::asio) exist, from the folder in VAR if set, else from PACKAGE's
# CMake config, else from the folder holding HEADER; in a cross build the
# build host's copy comes last. ENTRY... are the header trees a cross build
# exposes. Sets _portres_found in the caller.
function(_portres_header_package target package var header)
  if(TARGET ${target}) # defined by whoever included us: theirs, untouched
    set(_portres_found TRUE PARENT_SCOPE)
    return()
  endif()
  if(NOT ${var})
    find_package(${package} CONFIG QUIET)
    if(NOT TARGET ${target} AND CMAKE_CROSSCOMPILING)
      find_package(${package} CONFIG QUIET NO_CMAKE_FIND_ROOT_PATH)
    endif()
  endif()
  if(NOT TARGET ${target})
    find_path(${var} ${header} DOC "Folder holding ${header} (${package})")
    if(NOT ${var} AND CMAKE_CROSSCOMPILING)
      find_path(${var} ${header} NO_CMAKE_FIND_ROOT_PATH)
    endif()
    if(${var} AND NOT EXISTS "${${var}}/${header}")
      message(FATAL_ERROR "portres: ${var} is '${${var}}', which has no ${header}")
    elseif(${var})
      add_library(${target} INTERFACE IMPORTED)
      set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${${var}})
    endif()
  endif()
  if(TARGET ${target} AND CMAKE_CROSSCOMPILING)
    # Wherever it came from, the cross compiler sees only this package's trees.
    _portres_expose_host_headers(${target} ${package} ${ARGN})
  endif()
  if(TARGET ${target})
    set(_portres_found TRUE PARENT_SCOPE)
  else()
    set(_portres_found FALSE PARENT_SCOPE)
  endif()
endfunction()

# portres_find_dependency(NAME [REQUIRED]): NAME is asio, gsl, doctest or
# benchmark; sets portres_<NAME>_FOUND. REQUIRED stops with the packages to
# install when it is missing.
function(portres_find_dependency name)
  cmake_parse_arguments(arg "REQUIRED" "" "" ${ARGN})
  if(name STREQUAL "asio")
    _portres_header_package(asio::asio asio PORTRES_ASIO_INCLUDE_DIR asio.hpp asio.hpp asio)
    set(hint "standalone Asio (vcpkg: asio; Debian: libasio-dev; or -DPORTRES_ASIO_INCLUDE_DIR=<folder>)")
  elseif(name STREQUAL "gsl")
    _portres_header_package(Microsoft.GSL::GSL Microsoft.GSL PORTRES_GSL_INCLUDE_DIR gsl/gsl gsl)
    set(hint "Microsoft GSL (vcpkg: ms-gsl; Debian: libmsgsl-dev; or -DPORTRES_GSL_INCLUDE_DIR=<folder>)")
  elseif(name STREQUAL "doctest")
    _portres_header_package(doctest::doctest doctest PORTRES_DOCTEST_INCLUDE_DIR doctest/doctest.h doctest)
    set(hint "doctest (vcpkg: feature 'tests'; Debian: doctest-dev), or -DPORTRES_BUILD_TESTS=OFF")
  elseif(name STREQUAL "benchmark")
    # Compiled: never the build host's copy in a cross build.
    find_package(benchmark CONFIG QUIET)
    if(TARGET benchmark::benchmark)
      set(_portres_found TRUE)
    else()
      set(_portres_found FALSE)
    endif()
    set(hint "Google Benchmark (vcpkg: feature 'bench'; Debian: libbenchmark-dev)")
  else()
    message(FATAL_ERROR "portres_find_dependency: unknown dependency ${name}")
  endif()
  set(portres_${name}_FOUND ${_portres_found} PARENT_SCOPE)
  if(arg_REQUIRED AND NOT _portres_found)
    message(FATAL_ERROR "portres needs ${hint}")
  endif()
endfunction()

# portres_asio_version(VAR): ASIO_VERSION (e.g. 102201) of the asio::asio found,
# read from its asio/version.hpp; empty when no folder of it holds one.
function(portres_asio_version var)
  set(version)
  get_target_property(dirs asio::asio INTERFACE_INCLUDE_DIRECTORIES)
  foreach(dir IN LISTS dirs)
    if(NOT version AND EXISTS "${dir}/asio/version.hpp")
      file(STRINGS "${dir}/asio/version.hpp" line REGEX "^#define ASIO_VERSION [0-9]+")
      if(line MATCHES "ASIO_VERSION ([0-9]+)") # "#define ASIO_VERSION 102201 // 1.22.1"
        set(version ${CMAKE_MATCH_1})
      endif()
    endif()
  endforeach()
  set(${var} "${version}" PARENT_SCOPE)
endfunction()
