# bench/death: how soon the supervisor can know of a node's death: the life lock's release
# (ipc/life.h) against waitpid, after SIGKILL. A program, not a test: it prints figures.
add_executable(death ${CMAKE_CURRENT_LIST_DIR}/death.c)
target_include_directories(death PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(death PRIVATE paxos_ipc)
set_target_properties(death PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
add_test(NAME bench_death_smoke COMMAND death 2)
set_tests_properties(bench_death_smoke PROPERTIES TIMEOUT 60 LABELS bench)
