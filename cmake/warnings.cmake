add_library(esflow_options INTERFACE)
target_compile_options(esflow_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor)
if(ESFLOW_WERROR)
  target_compile_options(esflow_options INTERFACE -Werror)
endif()
if(ESFLOW_SANITIZE)
  target_compile_options(esflow_options INTERFACE -fsanitize=${ESFLOW_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(esflow_options INTERFACE -fsanitize=${ESFLOW_SANITIZE})
  if(ESFLOW_SANITIZE MATCHES "undefined")
    # oneTBB's graph_task::destruct_and_deallocate casts a task after running its
    # destructor (flow_graph_impl.h); the vptr check flags that inside TBB itself.
    target_compile_options(esflow_options INTERFACE -fno-sanitize=vptr)
  endif()
endif()
# jemalloc (libjemalloc-dev) replaces glibc's malloc in every binary: messages,
# contexts and RocksDB's write batches are allocated on one thread and freed on
# another, and glibc's arenas pay for that (malloc/free were 17% of the transfer
# bench's CPU; docs/performance.md "Allocator"). Sanitizers bring their own.
option(ESFLOW_JEMALLOC "Link binaries with jemalloc" ON)
if(ESFLOW_JEMALLOC AND NOT ESFLOW_SANITIZE)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
  target_link_libraries(esflow_options INTERFACE PkgConfig::JEMALLOC)
endif()
target_include_directories(esflow_options INTERFACE ${PROJECT_SOURCE_DIR})
