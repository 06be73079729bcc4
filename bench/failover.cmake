# bench/failover: leader fail-over times of paxos-shm under SIGKILL and SIGSTOP (a program).
add_executable(failover ${CMAKE_CURRENT_LIST_DIR}/failover.c)
set_target_properties(failover PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
add_dependencies(failover paxos-shm)
# Smoke test: a quick run completes and writes JSON with every expected field (no figure).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME bench_failover_quick_smoke
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/check_failover_json.py
                 $<TARGET_FILE:failover>)
set_tests_properties(bench_failover_quick_smoke PROPERTIES TIMEOUT 600 LABELS bench)
