# lwdm_embed_files(OUT_VAR SYMBOL DIR GLOB)
# Generates a C file that holds every file of DIR matching GLOB as a byte array,
# plus a table:  const lwdm_embedded_file_t SYMBOL[]; const size_t SYMBOL_count;
# (type declared in server/common/embedded.h). Regenerated when the files change.
function(lwdm_embed_files OUT_VAR SYMBOL DIR PATTERN)
  file(GLOB _files CONFIGURE_DEPENDS ${DIR}/${PATTERN})
  list(SORT _files)
  set(_out ${CMAKE_BINARY_DIR}/generated/${SYMBOL}.c)
  set(_list ${CMAKE_BINARY_DIR}/generated/${SYMBOL}.list)
  file(WRITE ${_list} "${_files}")
  add_custom_command(
    OUTPUT ${_out}
    COMMAND ${CMAKE_COMMAND} -DSYMBOL=${SYMBOL} -DOUT=${_out} -DLIST=${_list}
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_gen.cmake
    DEPENDS ${_files} ${_list} ${CMAKE_SOURCE_DIR}/cmake/embed_gen.cmake
    COMMENT "Embedding ${DIR}/${PATTERN}")
  set(${OUT_VAR} ${_out} PARENT_SCOPE)
endfunction()
