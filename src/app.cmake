# The paxos-shm program: supervisor, node loop, client driver, CLI.
add_library(paxos_app STATIC
  ${CMAKE_CURRENT_LIST_DIR}/cli.c
  ${CMAKE_CURRENT_LIST_DIR}/client.c
  ${CMAKE_CURRENT_LIST_DIR}/hist.c
  ${CMAKE_CURRENT_LIST_DIR}/log.c
  ${CMAKE_CURRENT_LIST_DIR}/node.c
  ${CMAKE_CURRENT_LIST_DIR}/persist.c
  ${CMAKE_CURRENT_LIST_DIR}/report.c
  ${CMAKE_CURRENT_LIST_DIR}/supervisor.c
  ${CMAKE_CURRENT_LIST_DIR}/transport_shm.c
  ${CMAKE_CURRENT_LIST_DIR}/transport_sock.c)
target_include_directories(paxos_app PUBLIC ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR})
target_compile_definitions(paxos_app PRIVATE PX_VERSION="${PROJECT_VERSION}")
target_link_libraries(paxos_app PUBLIC paxos_core paxos_ipc paxos_store PkgConfig::URCU)

add_executable(paxos-shm ${CMAKE_CURRENT_LIST_DIR}/main.c)
target_link_libraries(paxos-shm PRIVATE paxos_app)
set_target_properties(paxos-shm PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
