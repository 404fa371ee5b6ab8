// NCCL for CUDA tensors' collectives (nn/parallel/nccl_communicator.cpp): the library is opened with
// dlopen on first use, as cuBLAS is (cuda/cublas.h), so that processes that never exchange GPU
// tensors do not pay for loading it. Needs the toolkit's headers and nccl.h.
#pragma once
#include <nccl.h>

#include "core/error.h"

namespace ctxpool::cuda {

// The entry points ctxpool uses, resolved from libnccl.so.2 (an error naming the library and
// dlerror() when it cannot be opened).
struct NcclApi {
  ncclResult_t (*get_unique_id)(ncclUniqueId*);
  ncclResult_t (*comm_init_rank)(ncclComm_t*, int, ncclUniqueId, int);
  ncclResult_t (*comm_abort)(ncclComm_t);
  ncclResult_t (*comm_get_async_error)(ncclComm_t, ncclResult_t*);
  ncclResult_t (*reduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, int, ncclComm_t, cudaStream_t);
  ncclResult_t (*broadcast)(const void*, void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
  const char* (*error_string)(ncclResult_t);
};
const NcclApi& nccl();

inline void check_nccl(ncclResult_t result, const char* what) {
  CTXPOOL_CHECK(result == ncclSuccess, "nccl: ", what, " failed: ", nccl().error_string(result));
}

}  // namespace ctxpool::cuda
