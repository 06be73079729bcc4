# read_symbols(LIB UNDEF DEFS): the archive's global undefined names into UNDEF and its global
# defined names into DEFS, one "U name" / "T name" line each, read from the ELF symbol tables
# with readelf (READELF). Not nm: with fat LTO objects (PX_LTO) nm reads the intermediate code
# through the LTO plugin, which lists no calls to builtins such as malloc or printf.
function(read_symbols lib undef_var defs_var)
  execute_process(COMMAND ${READELF} -Ws ${lib} OUTPUT_VARIABLE sy RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "readelf failed on ${lib}")
  endif()
  string(REPLACE "\n" ";" rows "${sy}")
  set(undef "")
  set(defs "")
  foreach(row IN LISTS rows)
    if(row MATCHES "^ *[0-9]+: [0-9a-f]+ +[0-9a-fx]+ +[A-Z_]+ +(GLOBAL|WEAK) +[A-Z_]+ +([A-Z0-9]+) +([^ ]+)$")
      if(CMAKE_MATCH_2 STREQUAL "UND")
        string(APPEND undef "U ${CMAKE_MATCH_3}\n")
      else()
        string(APPEND defs "T ${CMAKE_MATCH_3}\n")
      endif()
    endif()
  endforeach()
  set(${undef_var} "${undef}" PARENT_SCOPE)
  set(${defs_var} "${defs}" PARENT_SCOPE)
endfunction()
