# Imported target `llama::llama`: a system llama.cpp (pkg-config) when present,
# else the pinned prebuilt libraries provisioned by scripts/provision-llama.sh.
# LLAMA_LIB_DIR is where the CPU backend variants live (the node passes it to
# ggml_backend_load_all_from_path()).
pkg_check_modules(LLAMA QUIET IMPORTED_TARGET llama)
add_library(llama_all INTERFACE)
if(LLAMA_FOUND)
  target_link_libraries(llama_all INTERFACE PkgConfig::LLAMA)
  set(LLAMA_LIB_DIR "${LLAMA_LIBDIR}")
else()
  set(LLAMA_ROOT ${CMAKE_SOURCE_DIR}/third_party/llama)
  if(NOT EXISTS ${LLAMA_ROOT}/include/llama.h)
    message(FATAL_ERROR "llama.cpp not found: run scripts/provision-llama.sh")
  endif()
  set(LLAMA_LIB_DIR "${LLAMA_ROOT}/lib")
  target_include_directories(llama_all SYSTEM INTERFACE ${LLAMA_ROOT}/include)
  target_link_directories(llama_all INTERFACE ${LLAMA_LIB_DIR})
  target_link_libraries(llama_all INTERFACE -l:libllama.v0.4.0.so -l:libggml.v0.4.0.so -l:libggml-base.so)
  target_link_options(llama_all INTERFACE "-Wl,-rpath,${LLAMA_LIB_DIR}")
endif()
add_library(llama::llama ALIAS llama_all)
