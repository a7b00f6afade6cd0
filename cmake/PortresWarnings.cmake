# portres_set_warnings(target): the project's warning set, always PRIVATE so
# consumers never inherit it. Each compiler gets its own flags: GCC's would be
# misread by cl (-Wall as /Wall, -Werror ignored).
function(portres_set_warnings target)
  if(MSVC)
    # /permissive-: standard conformance (C++20 implies it; explicit for older
    # toolsets); /bigobj: Asio + doctest TUs exceed the default section count.
    target_compile_options(${target} PRIVATE /W4 /permissive- /bigobj /utf-8 /Zc:__cplusplus)
    # std::getenv and friends are standard C++ here, not a call for the _s variants.
    target_compile_definitions(${target} PRIVATE _CRT_SECURE_NO_WARNINGS)
    if(PORTRES_WERROR)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  elseif(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                             -Wno-sign-conversion)
    if(PORTRES_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
endfunction()
