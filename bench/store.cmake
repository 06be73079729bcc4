# store_bench: records/s of the store backends (sqlite sync normal/full, shm) by batch size.
add_executable(store_bench ${CMAKE_CURRENT_SOURCE_DIR}/store_bench.c)
target_link_libraries(store_bench PRIVATE paxos_store)
