# bench/ring: ipc ring microbenchmarks (SPSC, broadcast x15, pipe, socketpair). A program,
# not a test: it prints figures and asserts no timing. Output: ${CMAKE_BINARY_DIR}/bench/ring.
if(TARGET paxos_ipc)
  add_executable(ring ${CMAKE_CURRENT_LIST_DIR}/ring.c)
  target_link_libraries(ring PRIVATE paxos_ipc)
  set_target_properties(ring PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
endif()
