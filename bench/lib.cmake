# bench/lib_throughput: commands/s of a counter state machine through the public API.
add_executable(lib_throughput ${CMAKE_CURRENT_SOURCE_DIR}/lib_throughput.c)
target_link_libraries(lib_throughput PRIVATE paxos-shm-lib)
add_test(NAME bench_lib_throughput_smoke COMMAND lib_throughput --commands 500 --bytes 8,4096
                                                    --store sqlite,shm)
set_tests_properties(bench_lib_throughput_smoke PROPERTIES TIMEOUT 120 LABELS bench)
