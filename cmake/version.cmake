# Writes OUT = a header defining PX_VERSION: `git describe --tags --dirty` when SRC is a git
# checkout with a tag, "<VERSION>-g<commit>[-dirty]" when it has no tag, else VERSION. Run at
# every build (target px_version), so the version never goes stale after a commit; the file is
# rewritten only when the text changes, so nothing recompiles needlessly.
set(text ${VERSION})
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS ${SRC}/.git)
  execute_process(COMMAND ${GIT_EXECUTABLE} describe --tags --dirty WORKING_DIRECTORY ${SRC}
                  OUTPUT_VARIABLE described OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                  RESULT_VARIABLE rc)
  if(rc EQUAL 0 AND described)
    set(text ${described})
  else()
    execute_process(COMMAND ${GIT_EXECUTABLE} describe --always --dirty --abbrev=12
                    WORKING_DIRECTORY ${SRC} OUTPUT_VARIABLE commit
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND commit)
      set(text "${VERSION}-g${commit}")
    endif()
  endif()
endif()
set(content "/* Generated at build time by cmake/version.cmake. */\n#define PX_VERSION \"${text}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL content)
  file(WRITE ${OUT} "${content}")
endif()
