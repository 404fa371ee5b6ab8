# The CUDA emulator build (CTXPOOL_CUDA_EMULATOR=ON; tests/emulator/README.md): the .cu files of
# CTXPOOL_CUDA_SOURCES are translated into C++ (translate_cu.py rewrites the launches) and compiled with
# the emulator's cuda_runtime.h; cuBLAS is the emulator's libcublas.so.13, opened with dlopen as the real
# one is; there is no cuDNN (conv2d takes its im2col path) and no NCCL.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(CTXPOOL_EMULATOR_DIR ${CMAKE_CURRENT_LIST_DIR})
# ctxpool_translate_cu(<file.cu relative to the source root> <variable>): the C++ file it becomes.
function(ctxpool_translate_cu cu var)
  set(out ${CMAKE_BINARY_DIR}/emulated/${cu}.cpp)
  add_custom_command(OUTPUT ${out}
    COMMAND ${Python3_EXECUTABLE} ${CTXPOOL_EMULATOR_DIR}/translate_cu.py ${CMAKE_SOURCE_DIR}/${cu} ${out}
    DEPENDS ${CMAKE_SOURCE_DIR}/${cu} ${CTXPOOL_EMULATOR_DIR}/translate_cu.py
    COMMENT "Translating ${cu} for the CUDA emulator" VERBATIM)
  set(${var} ${out} PARENT_SCOPE)
endfunction()
foreach(cu ${CTXPOOL_CUDA_SOURCES})
  ctxpool_translate_cu(${cu} out)
  list(APPEND CTXPOOL_SOURCES ${out})
endforeach()
list(APPEND CTXPOOL_SOURCES ops/cuda/register.cpp ops/cuda/cudnn_none.cpp
     ${CTXPOOL_EMULATOR_DIR}/scheduler.cpp ${CTXPOOL_EMULATOR_DIR}/runtime.cpp)
# The scheduler's own bookkeeping is not what ASan is there to check, and it runs on every switch of
# every thread: uninstrumented, the emulated pass is faster. (It still tells ASan about each switch.)
if(CTXPOOL_SANITIZE)
  set_source_files_properties(${CTXPOOL_EMULATOR_DIR}/scheduler.cpp PROPERTIES
                              COMPILE_OPTIONS "-fno-sanitize=address;-fno-sanitize=undefined"
                              COMPILE_DEFINITIONS CTXPOOL_EMU_ASAN)
endif()

add_library(ctxpool_emulated_cublas SHARED ${CTXPOOL_EMULATOR_DIR}/cublas.cpp)
set_target_properties(ctxpool_emulated_cublas PROPERTIES OUTPUT_NAME cublas VERSION 13 SOVERSION 13
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/emulator)
target_include_directories(ctxpool_emulated_cublas PRIVATE ${CTXPOOL_EMULATOR_DIR}/include)
target_compile_options(ctxpool_emulated_cublas PRIVATE -Wall -Wextra)

function(ctxpool_use_cuda_emulator target)
  target_include_directories(${target} BEFORE PUBLIC ${CTXPOOL_EMULATOR_DIR}/include)
  target_compile_definitions(${target} PUBLIC CTXPOOL_WITH_CUDA CTXPOOL_CUDA_EMULATOR)
  target_compile_definitions(${target} PRIVATE CTXPOOL_CUDA_LIBRARY_DIR="${CMAKE_BINARY_DIR}/emulator")
  target_link_libraries(${target} PUBLIC ${CMAKE_DL_LIBS})
  # dlopen("libcublas.so.13") must find the emulator's before a real one on the loader's path: an old-style
  # RPATH (DT_RPATH) is searched before LD_LIBRARY_PATH and ld.so.cache.
  target_link_options(${target} PUBLIC -Wl,--disable-new-dtags -Wl,-rpath,${CMAKE_BINARY_DIR}/emulator)
  add_dependencies(${target} ctxpool_emulated_cublas)
endfunction()
