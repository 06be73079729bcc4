# A golden trace must be able to fail, and --rewrite must restore it: copies SCENARIO to
# COPY with one line of its golden section altered (the virtual time on its first line), then
#   MODE=mismatch: px_sim --script COPY must exit non-zero and print the differing lines;
#   MODE=rewrite:  px_sim --script COPY --rewrite must exit 0 and leave COPY equal to SCENARIO,
#                  which then passes.
# cmake -DPX_SIM=... -DSCENARIO=... -DCOPY=... -DMODE=mismatch|rewrite -P golden_check.cmake
foreach(var PX_SIM SCENARIO COPY MODE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "golden_check: ${var} not set")
  endif()
endforeach()

file(READ ${SCENARIO} original)
string(REGEX REPLACE "\n-- expect --\nt=[0-9]+ " "\n-- expect --\nt=0 " altered "${original}")
if(altered STREQUAL original)
  message(FATAL_ERROR "golden_check: ${SCENARIO} has no golden section to alter")
endif()
file(WRITE ${COPY} "${altered}")

if(MODE STREQUAL "mismatch")
  execute_process(COMMAND ${PX_SIM} --script ${COPY} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "golden_check: an altered golden trace passed:\n${out}${err}")
  endif()
  foreach(want "--- expected" "+++ got" "\n-t=0 " "\n+t=")
    string(FIND "${err}" "${want}" at)
    if(at LESS 0)
      message(FATAL_ERROR "golden_check: no '${want}' in the mismatch report:\n${err}")
    endif()
  endforeach()
elseif(MODE STREQUAL "rewrite")
  execute_process(COMMAND ${PX_SIM} --script ${COPY} --rewrite RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "golden_check: --rewrite failed (${rc}):\n${out}${err}")
  endif()
  file(READ ${COPY} rewritten)
  if(NOT rewritten STREQUAL original)
    message(FATAL_ERROR "golden_check: --rewrite did not restore ${SCENARIO}:\n${rewritten}")
  endif()
  execute_process(COMMAND ${PX_SIM} --script ${COPY} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "golden_check: the rewritten copy fails:\n${out}${err}")
  endif()
else()
  message(FATAL_ERROR "golden_check: MODE is mismatch or rewrite, not '${MODE}'")
endif()
