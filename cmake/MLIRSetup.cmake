# Finds Debian's MLIR/LLVM 22 and pulls in the CMake helpers the compiler uses.
find_package(MLIR REQUIRED CONFIG HINTS /usr/lib/llvm-22/lib/cmake/mlir)
message(STATUS "Using MLIR from ${MLIR_DIR} (LLVM ${LLVM_PACKAGE_VERSION})")

set(LLVM_RUNTIME_OUTPUT_INTDIR ${CMAKE_BINARY_DIR}/bin)
set(LLVM_LIBRARY_OUTPUT_INTDIR ${CMAKE_BINARY_DIR}/lib)
set(MLIR_BINARY_DIR ${CMAKE_BINARY_DIR})

list(APPEND CMAKE_MODULE_PATH ${MLIR_CMAKE_DIR} ${LLVM_CMAKE_DIR})
include(TableGen)
include(AddLLVM)
include(AddMLIR)
include(HandleLLVMOptions)

include_directories(SYSTEM ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
include_directories(${M2C_SOURCE_DIR} ${M2C_BINARY_DIR})
separate_arguments(M2C_LLVM_DEFINITIONS NATIVE_COMMAND ${LLVM_DEFINITIONS})
add_definitions(${M2C_LLVM_DEFINITIONS})
link_directories(${LLVM_BUILD_LIBRARY_DIR})

set(M2C_TOOLS_DIR /usr/lib/llvm-22/bin)

# Dialect and pass references are generated at build time into
# build/docs (target m2c-docs, part of ALL).
if(NOT TARGET mlir-doc)
  add_custom_target(mlir-doc)
endif()
