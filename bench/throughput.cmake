# bench/throughput: rounds/s of paxos-shm against its baselines (a program, not a test).
add_executable(throughput ${CMAKE_CURRENT_LIST_DIR}/throughput.c ${CMAKE_CURRENT_LIST_DIR}/bare.c)
target_include_directories(throughput PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(throughput PRIVATE paxos_supervisor paxos_ipc)
set_target_properties(throughput PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
add_dependencies(throughput paxos-shm)
# Smoke test: the harness completes and writes valid JSON with every expected field.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME bench_throughput_quick_smoke
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/check_throughput_json.py
                 $<TARGET_FILE:throughput>)
set_tests_properties(bench_throughput_quick_smoke PROPERTIES TIMEOUT 600 LABELS bench)
# --hosts K runs its zmq rows through the namespace driver of the multi-host tests.
target_compile_definitions(throughput PRIVATE PX_NET_PY="${PROJECT_SOURCE_DIR}/tests/net/net.py")
add_dependencies(throughput paxos-shm-keygen)
# bench/star: the fastest pattern on the same rings, to hold the bare ceiling against.
add_executable(star ${CMAKE_CURRENT_LIST_DIR}/star_main.c ${CMAKE_CURRENT_LIST_DIR}/star.c
                    ${CMAKE_CURRENT_LIST_DIR}/bare.c)
target_include_directories(star PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(star PRIVATE paxos_supervisor paxos_ipc)
set_target_properties(star PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
# Smoke test: the star and the bare ceiling both complete, alternated, on a small pool.
add_test(NAME bench_star_smoke COMMAND star --nodes 3 --window 64 --rounds 2000 --reps 1 --bare)
set_tests_properties(bench_star_smoke PROPERTIES TIMEOUT 120 LABELS bench)
# Smoke test of the command-size axis: a long command's rows (sqlite) and their bare row.
add_test(NAME bench_throughput_sizes_smoke
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/check_throughput_json.py
                 $<TARGET_FILE:throughput> --command-bytes 8,4096 --rounds 2000 --window 1024)
set_tests_properties(bench_throughput_sizes_smoke PROPERTIES TIMEOUT 300 LABELS bench)
