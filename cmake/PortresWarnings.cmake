# portres_set_warnings(target): the project's warning set, always PRIVATE so
# consumers never inherit it.
function(portres_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion)
  if(PORTRES_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
