# portres_install_pkgconfig(target): installs <libdir>/pkgconfig/portres.pc for
# users who build without CMake (`pkg-config --cflags --libs portres`). It says
# what the CMake package says: the include folder, the library, the compile
# definitions every user needs, Asio's and GSL's folders when they are not the
# compiler's own, and the system libraries a static portres needs.
function(portres_install_pkgconfig target)
  set(pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(pc_prefix "${CMAKE_INSTALL_PREFIX}")
    set(pc_libdir "${CMAKE_INSTALL_FULL_LIBDIR}")
    set(pc_includedir "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
  else()
    # Relative to the .pc file, so `cmake --install --prefix X` is honoured.
    file(RELATIVE_PATH up /root/${pc_dir} /root)
    string(REGEX REPLACE "/$" "" up "${up}")
    set(pc_prefix "\${pcfiledir}/${up}")
    set(pc_libdir "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
    set(pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
  endif()

  set(pc_cflags " -DASIO_STANDALONE")
  if(WIN32)
    string(APPEND pc_cflags " -D_WIN32_WINNT=0x0A00")
  endif()
  # The system libraries the target links (by name); Threads as -pthread.
  set(system_libs)
  get_target_property(links ${target} LINK_LIBRARIES)
  foreach(lib IN LISTS links)
    if(lib STREQUAL "Threads::Threads")
      list(APPEND system_libs -pthread)
    elseif(NOT TARGET ${lib} AND NOT lib MATCHES "[$<>:/]")
      list(APPEND system_libs -l${lib})
    endif()
  endforeach()
  list(REMOVE_DUPLICATES system_libs)
  foreach(dep asio::asio Microsoft.GSL::GSL)
    get_target_property(dirs ${dep} INTERFACE_INCLUDE_DIRECTORIES)
    foreach(dir IN LISTS dirs)
      # A cross build's view of a build-host package is a folder of links in
      # the build tree, gone with it: such a consumer brings its own.
      string(FIND "${dir}/" "${CMAKE_BINARY_DIR}/" in_build_tree)
      if(dir AND NOT dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES AND NOT in_build_tree EQUAL 0)
        string(APPEND pc_cflags " -I${dir}")
      endif()
    endforeach()
  endforeach()
  list(JOIN system_libs " " system_libs)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "STATIC_LIBRARY")
    set(pc_libs " ${system_libs}")    # a static library's users link its dependencies
    set(pc_libs_private "")
  else()
    set(pc_libs "")
    set(pc_libs_private "Libs.private: ${system_libs}")
  endif()
  configure_file(${PROJECT_SOURCE_DIR}/cmake/portres.pc.in ${CMAKE_CURRENT_BINARY_DIR}/portres.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/portres.pc DESTINATION ${pc_dir})
endfunction()
