# Compiles a file of the repository into the binary (a page, a script), so it
# stays a real file that editors, linters and reviewers see.
#
#   esflow_embed_file(TARGET <target> FILE <file> NAME <identifier>)
#
# generates <build>/embedded/<dir of file>/<file name>.h at build time (rebuilt when the
# file changes), adds it to the target and the build dir to its include path.
# The header holds the bytes as `inline constexpr unsigned char NAME_bytes[]`
# (NUL-terminated) and `NAME()` returning them as a std::string_view; include it
# as "<dir of file>/<file name>.h", e.g. "transport/graph_page.html.h".
# This file is also the script that writes the header (cmake -P, below).
if(NOT CMAKE_SCRIPT_MODE_FILE)
  set(ESFLOW_EMBED_SCRIPT "${CMAKE_CURRENT_LIST_FILE}")
  function(esflow_embed_file)
    cmake_parse_arguments(E "" "TARGET;FILE;NAME" "" ${ARGN})
    get_filename_component(in "${E_FILE}" ABSOLUTE)
    file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${in}")
    set(out "${PROJECT_BINARY_DIR}/embedded/${rel}.h")
    add_custom_command(OUTPUT "${out}"
      COMMAND ${CMAKE_COMMAND} -DIN=${in} -DOUT=${out} -DNAME=${E_NAME} -P ${ESFLOW_EMBED_SCRIPT}
      DEPENDS "${in}" "${ESFLOW_EMBED_SCRIPT}"
      COMMENT "Embedding ${rel}" VERBATIM)
    target_sources(${E_TARGET} PRIVATE "${out}")
    target_include_directories(${E_TARGET} PRIVATE "${PROJECT_BINARY_DIR}/embedded")
  endfunction()
  return()
endif()

# Script mode: cmake -DIN=<file> -DOUT=<header> -DNAME=<identifier> -P embed_file.cmake
file(READ "${IN}" content HEX)
string(LENGTH "${content}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REPEAT "[0-9a-f]" 32 sixteen_bytes)
string(REGEX REPLACE "(${sixteen_bytes})" "\\1\n" content "${content}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," content "${content}")
get_filename_component(source_name "${IN}" NAME)
file(WRITE "${OUT}.tmp"
     "// Generated from ${source_name} by cmake/embed_file.cmake: edit that file, not this one.\n"
     "#pragma once\n#include <string_view>\n\n"
     "inline constexpr unsigned char ${NAME}_bytes[${size} + 1] = {\n${content}0x00};\n\n"
     "inline std::string_view ${NAME}() {\n"
     "  return {reinterpret_cast<const char*>(${NAME}_bytes), ${size}};\n}\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
