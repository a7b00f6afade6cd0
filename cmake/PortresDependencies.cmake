# Header-only dependencies come from Debian's /usr/include. A cross compiler
# must not search /usr/include (it would pick up glibc headers), so for the
# MinGW build only the needed trees are exposed through a folder of symlinks.
find_package(Threads REQUIRED)

set(PORTRES_HOST_INCLUDE_DIR "/usr/include" CACHE PATH
    "Where the host's header-only dependencies (asio, gsl, doctest) live")

add_library(portres_header_deps INTERFACE)
target_compile_definitions(portres_header_deps INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED)
if(CMAKE_CROSSCOMPILING)
  set(_portres_links ${CMAKE_BINARY_DIR}/host-headers)
  file(MAKE_DIRECTORY ${_portres_links})
  foreach(entry asio.hpp asio gsl doctest)
    if(NOT EXISTS ${PORTRES_HOST_INCLUDE_DIR}/${entry})
      message(FATAL_ERROR "portres: ${PORTRES_HOST_INCLUDE_DIR}/${entry} is missing "
                          "(install libasio-dev libmsgsl-dev doctest-dev)")
    endif()
    file(CREATE_LINK ${PORTRES_HOST_INCLUDE_DIR}/${entry} ${_portres_links}/${entry} SYMBOLIC)
  endforeach()
  target_include_directories(portres_header_deps SYSTEM INTERFACE $<BUILD_INTERFACE:${_portres_links}>)
else()
  find_path(PORTRES_ASIO_INCLUDE_DIR asio.hpp REQUIRED)
  find_path(PORTRES_GSL_INCLUDE_DIR gsl/gsl REQUIRED)
endif()
if(WIN32)
  # Asio warns without an explicit target version; 0x0A00 is Windows 10.
  target_compile_definitions(portres_header_deps INTERFACE _WIN32_WINNT=0x0A00 WIN32_LEAN_AND_MEAN)
  target_link_libraries(portres_header_deps INTERFACE ws2_32 mswsock)
endif()
target_link_libraries(portres_header_deps INTERFACE Threads::Threads)
