# Writes OUT: the CHAT_BUILD_VERSION define of chat_build_info (common/service_metrics.c).
# Run at every build (the chat_build_version target), so the commit is the one built, not the
# one configured; the file is rewritten only when the version changes, so an unchanged
# version rebuilds nothing. OVERRIDE (-DCHAT_BUILD_VERSION=... at configure) wins; else the
# project VERSION, plus "+g<commit>" (".dirty" with uncommitted changes) in a git checkout.
if(OVERRIDE)
  set(version "${OVERRIDE}")
else()
  set(version "${VERSION}")
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
      WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE commit
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND commit)
      set(version "${version}+g${commit}")
      execute_process(COMMAND ${GIT_EXECUTABLE} diff-index --quiet HEAD --
        WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE dirty ERROR_QUIET)
      if(NOT dirty EQUAL 0)
        set(version "${version}.dirty")
      endif()
    endif()
  endif()
endif()
set(text "#define CHAT_BUILD_VERSION \"${version}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE "${OUT}" "${text}")
endif()
