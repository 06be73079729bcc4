# sm_lib_error.cmake: px_sim --sm-lib with a state machine it cannot use must exit 2 with one
# line on stderr that contains WANT, and nothing on stdout.
#   cmake -DPX_SIM=... -DLIB=... -DWANT=... -P sm_lib_error.cmake
execute_process(COMMAND ${PX_SIM} --sm-lib ${LIB} --seeds 3 RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX MATCHALL "\n" newlines "${err}")
list(LENGTH newlines lines)
if(NOT rc EQUAL 2 OR NOT lines EQUAL 1 OR NOT out STREQUAL "")
  message(FATAL_ERROR "px_sim --sm-lib ${LIB}: exit ${rc}, ${lines} lines on stderr, stdout "
                      "'${out}' (want exit 2, one line, nothing): ${err}")
endif()
string(FIND "${err}" "${WANT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "px_sim --sm-lib ${LIB}: '${err}' does not say '${WANT}'")
endif()
message(STATUS "exit 2: ${err}")
