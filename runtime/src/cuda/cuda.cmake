# The CUDA backend (MEDITRON_CUDA=ON), included by ../../CMakeLists.txt: the .cu sources compile into an
# object library with nvcc's own flags (the C++ flags such as -march do not apply to them) and link into the
# same libmeditron.so with cudart, cuBLAS/cuBLASLt and NCCL. runtime/cuda_toolchain.sh prints the
# definitions that locate a toolchain (a CUDA install, or the PyPI wheels on a machine without one).
set(MEDITRON_CUDA_ROOT "" CACHE PATH "directory with include/cublas_v2.h and lib/libcublas.so*")
set(MEDITRON_NCCL_ROOT "" CACHE PATH "directory with include/nccl.h and lib/libnccl.so*")
set(MEDITRON_CUDA_ARCHS "80;90" CACHE STRING "GPU architectures of the CUDA backend (80 A100, 90 H100/H200)")
set(MEDITRON_CUDA_SOURCES src/cuda/kernels.cu src/cuda/attention.cu src/cuda/attention_mma.cu src/cuda/nccl_comm.cu
  src/cuda/backend.cu)
if(MEDITRON_CUDA_EMULATE)
  # The emulator (src/cuda/emulator.hpp): the .cu sources compile as C++ into libmeditron with emulator.cpp in
  # place of cudart and cuBLAS and emulator_nccl.cpp in place of NCCL, of which only the headers are needed
  # (no nvcc, no GPU).
  find_path(MEDITRON_CUBLAS_INCLUDE cublas_v2.h HINTS ${MEDITRON_CUDA_ROOT} PATH_SUFFIXES include)
  find_path(MEDITRON_NCCL_INCLUDE nccl.h HINTS ${MEDITRON_NCCL_ROOT} ${MEDITRON_CUDA_ROOT} PATH_SUFFIXES include)
  if(NOT MEDITRON_CUBLAS_INCLUDE OR NOT MEDITRON_NCCL_INCLUDE)
    message(FATAL_ERROR "MEDITRON-MISSING: the CUDA headers (cublas_v2.h, nccl.h) for MEDITRON_CUDA_EMULATE=ON were not found (MEDITRON_CUDA_ROOT=${MEDITRON_CUDA_ROOT}, MEDITRON_NCCL_ROOT=${MEDITRON_NCCL_ROOT}); runtime/cuda_toolchain.sh installs them.")
  endif()
  message(STATUS "meditron: CUDA backend on the CUDA emulator (headers ${MEDITRON_CUBLAS_INCLUDE})")
  set_source_files_properties(${MEDITRON_CUDA_SOURCES} PROPERTIES LANGUAGE CXX COMPILE_OPTIONS "-xc++")
  target_sources(meditron PRIVATE ${MEDITRON_CUDA_SOURCES} src/cuda/emulator.cpp src/cuda/emulator_nccl.cpp)
  target_include_directories(meditron PRIVATE src ${MEDITRON_CUBLAS_INCLUDE} ${MEDITRON_NCCL_INCLUDE})
  target_compile_definitions(meditron PRIVATE MEDITRON_CUDA MEDITRON_CUDA_EMULATE)
  target_compile_options(meditron PRIVATE -fno-strict-aliasing -Wno-unknown-pragmas)
  return()
endif()
set(CMAKE_CUDA_RUNTIME_LIBRARY None)  # cudart is linked explicitly below (the wheels ship only libcudart.so.13)
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "MEDITRON-MISSING: nvcc was not found for MEDITRON_CUDA=ON. Build with `deno task build --cuda`, which installs a CUDA 13 toolchain from PyPI when the machine has none (runtime/cuda_toolchain.sh).")
endif()
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

get_filename_component(MEDITRON_NVCC_ROOT "${CMAKE_CUDA_COMPILER}" DIRECTORY)
get_filename_component(MEDITRON_NVCC_ROOT "${MEDITRON_NVCC_ROOT}" DIRECTORY)
set(_cuda_hints ${MEDITRON_CUDA_ROOT} ${MEDITRON_NVCC_ROOT} ${MEDITRON_NVCC_ROOT}/targets/x86_64-linux
  ${MEDITRON_NVCC_ROOT}/targets/sbsa-linux)
find_path(MEDITRON_CUBLAS_INCLUDE cublas_v2.h HINTS ${_cuda_hints} PATH_SUFFIXES include NO_DEFAULT_PATH)
find_path(MEDITRON_NCCL_INCLUDE nccl.h HINTS ${MEDITRON_NCCL_ROOT} ${_cuda_hints} PATH_SUFFIXES include)
find_library(MEDITRON_CUDART NAMES cudart libcudart.so.13 libcudart.so.12 HINTS ${_cuda_hints}
  PATH_SUFFIXES lib64 lib NO_DEFAULT_PATH)
find_library(MEDITRON_CUBLAS NAMES cublas libcublas.so.13 libcublas.so.12 HINTS ${_cuda_hints}
  PATH_SUFFIXES lib64 lib NO_DEFAULT_PATH)
find_library(MEDITRON_CUBLASLT NAMES cublasLt libcublasLt.so.13 libcublasLt.so.12 HINTS ${_cuda_hints}
  PATH_SUFFIXES lib64 lib NO_DEFAULT_PATH)
find_library(MEDITRON_NCCL NAMES nccl libnccl.so.2 HINTS ${MEDITRON_NCCL_ROOT} ${_cuda_hints}
  PATH_SUFFIXES lib64 lib)
foreach(v MEDITRON_CUBLAS_INCLUDE MEDITRON_NCCL_INCLUDE MEDITRON_CUDART MEDITRON_CUBLAS MEDITRON_CUBLASLT MEDITRON_NCCL)
  if(NOT ${v})
    message(FATAL_ERROR "MEDITRON-MISSING: ${v} was not found (MEDITRON_CUDA_ROOT=${MEDITRON_CUDA_ROOT}, MEDITRON_NCCL_ROOT=${MEDITRON_NCCL_ROOT}). Build with `deno task build --cuda` (runtime/cuda_toolchain.sh finds or installs the toolchain).")
  endif()
endforeach()
message(STATUS "meditron: CUDA ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}), archs ${MEDITRON_CUDA_ARCHS}")
message(STATUS "meditron: cudart ${MEDITRON_CUDART}, cuBLAS ${MEDITRON_CUBLAS}, NCCL ${MEDITRON_NCCL}")

add_library(meditron_cuda OBJECT ${MEDITRON_CUDA_SOURCES})
set_target_properties(meditron_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON CUDA_VISIBILITY_PRESET hidden
  CUDA_ARCHITECTURES "${MEDITRON_CUDA_ARCHS}")
set_target_properties(meditron PROPERTIES CUDA_ARCHITECTURES OFF)  # no CUDA sources of its own
target_include_directories(meditron_cuda PRIVATE include src ${MEDITRON_CUBLAS_INCLUDE} ${MEDITRON_NCCL_INCLUDE})
target_compile_options(meditron_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3 --use_fast_math -lineinfo
  -Xcompiler=-Wall,-Wno-unused-parameter>)
target_sources(meditron PRIVATE $<TARGET_OBJECTS:meditron_cuda>)
target_include_directories(meditron PRIVATE ${MEDITRON_CUBLAS_INCLUDE} ${MEDITRON_NCCL_INCLUDE})
target_compile_definitions(meditron PRIVATE MEDITRON_CUDA)
target_link_libraries(meditron PRIVATE ${MEDITRON_CUBLAS} ${MEDITRON_CUBLASLT} ${MEDITRON_NCCL} ${MEDITRON_CUDART})
# Find the toolchain's libraries at run time where they were at build time (wheel directories have no
# ld.so.conf entry); LD_LIBRARY_PATH still wins.
foreach(lib ${MEDITRON_CUDART} ${MEDITRON_CUBLAS} ${MEDITRON_NCCL})
  get_filename_component(dir ${lib} DIRECTORY)
  list(APPEND MEDITRON_CUDA_RPATH ${dir})
endforeach()
list(REMOVE_DUPLICATES MEDITRON_CUDA_RPATH)
set_property(TARGET meditron APPEND PROPERTY BUILD_RPATH ${MEDITRON_CUDA_RPATH})
set_property(TARGET meditron APPEND PROPERTY INSTALL_RPATH ${MEDITRON_CUDA_RPATH})
