# Installs the built portres into a scratch prefix, then configures, builds and
# runs the consumer project against it with find_package(portres).
set(prefix ${WORK_DIR}/prefix)
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
set(cross_args)
if(CONSUMER_TOOLCHAIN)
  # The installed config looks for Asio and GSL; a cross compiler is shown only
  # the folder of header links (never all of /usr/include).
  set(cross_args -DCMAKE_TOOLCHAIN_FILE=${CONSUMER_TOOLCHAIN}
      -DPORTRES_ASIO_INCLUDE_DIR=${CONSUMER_HEADERS} -DPORTRES_GSL_INCLUDE_DIR=${CONSUMER_HEADERS}
      # find_package re-roots CMAKE_PREFIX_PATH under the sysroot; name the config folder.
      -Dportres_DIR=${prefix}/lib/cmake/portres)
endif()
run(${CMAKE_COMMAND} --install ${PORTRES_BUILD_DIR} --prefix ${prefix} --config ${BUILD_TYPE})
run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${BUILD_TYPE} ${cross_args})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
if(EXISTS ${WORK_DIR}/build/consumer.exe)
  string(REPLACE "|" ";" emulator "${CONSUMER_EMULATOR}")
  run(${emulator} ${WORK_DIR}/build/consumer.exe)
else()
  run(${WORK_DIR}/build/consumer)
endif()
message(STATUS "consumer: find_package(portres) build and run passed")
