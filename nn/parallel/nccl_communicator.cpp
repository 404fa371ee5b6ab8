// NCCL collectives for CUDA tensors (nn/parallel/nccl_communicator.h). Built only with CUDA and
// nccl.h; never run on a GPU by the session that wrote it (see bench/RESULTS.md for what has).
#include "nn/parallel/nccl_communicator.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "cuda/check.h"
#include "cuda/nccl.h"

namespace ctxpool::nn::parallel {

namespace {

ncclDataType_t nccl_type(const Tensor& t, int device, const char* op) {
  CTXPOOL_CHECK(t.defined() && t.device().is_cuda() && t.device().index == device && t.is_contiguous(),
                "distributed ", op, ": expected a contiguous tensor on cuda:", device, ", got ",
                t.defined() ? detail::str_cat(shape_str(t.sizes()), " on ", t.device()) : "undefined");
  if (t.dtype() == kFloat32) return ncclFloat32;
  if (t.dtype() == kFloat64) return ncclFloat64;
  if (t.dtype() == kInt64) return ncclInt64;
  detail::fail("distributed ", op, ": dtype ", t.dtype(), " is not supported (float32, float64, int64)");
}

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> bootstrap, int device, double timeout_s)
      : bootstrap_(std::move(bootstrap)), device_(device), timeout_s_(timeout_s) {
    CTXPOOL_CHECK(bootstrap_ != nullptr, "nccl_communicator: no bootstrap communicator");
    CTXPOOL_CHECK(timeout_s > 0, "nccl_communicator: the timeout must be positive, got ", timeout_s);
    const cuda::NcclApi& api = cuda::nccl();
    // Rank 0's id reaches the others as 16 int64s through the bootstrap communicator.
    ncclUniqueId id;
    static_assert(sizeof(id) == 16 * sizeof(int64_t), "ncclUniqueId is 128 bytes");
    Tensor carrier = zeros({16}, kInt64);
    if (bootstrap_->rank() == 0) {
      cuda::check_nccl(api.get_unique_id(&id), "ncclGetUniqueId");
      std::memcpy(carrier.raw_data(), &id, sizeof(id));
    }
    bootstrap_->broadcast(carrier, 0);
    std::memcpy(&id, carrier.raw_data(), sizeof(id));
    cuda::set_device(device_);
    cuda::check_nccl(api.comm_init_rank(&comm_, bootstrap_->size(), id, bootstrap_->rank()), "ncclCommInitRank");
  }
  // comm_ is not destroyed: at exit the CUDA runtime may already be gone (as for cuBLAS handles).

  int rank() const override { return bootstrap_->rank(); }
  int size() const override { return bootstrap_->size(); }

  // As MPI's: a reduce to rank 0 and a broadcast from it, so that every process holds rank 0's sum
  // bit for bit (the replicas stay one model). Runs for one process too (NCCL's single-rank path).
  void all_reduce_sum(const Tensor& t) override {
    if (t.device().is_cpu()) return bootstrap_->all_reduce_sum(t);
    const ncclDataType_t type = nccl_type(t, device_, "all_reduce_sum");
    const cuda::NcclApi& api = cuda::nccl();
    cuda::set_device(device_);
    void* p = t.raw_data();
    const size_t n = static_cast<size_t>(t.numel());
    cuda::check_nccl(api.reduce(p, p, n, type, ncclSum, 0, comm_, cuda::current_stream()), "ncclReduce");
    wait("all_reduce_sum (reduce to rank 0)");
    cuda::check_nccl(api.broadcast(p, p, n, type, 0, comm_, cuda::current_stream()), "ncclBroadcast");
    wait("all_reduce_sum (broadcast from rank 0)");
  }

  void broadcast(const Tensor& t, int root) override {
    if (t.device().is_cpu()) return bootstrap_->broadcast(t, root);
    CTXPOOL_CHECK(root >= 0 && root < size(), "distributed broadcast: root ", root, " is not a rank of ", size());
    const ncclDataType_t type = nccl_type(t, device_, "broadcast");
    cuda::set_device(device_);
    cuda::check_nccl(cuda::nccl().broadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), type, root,
                                            comm_, cuda::current_stream()),
                     "ncclBroadcast");
    wait("broadcast");
  }

  void barrier() override { bootstrap_->barrier(); }

  [[noreturn]] void abort(const std::string& message) override {
    cuda::nccl().comm_abort(comm_);  // frees the GPU side of collectives still waiting on a dead peer
    bootstrap_->abort(message);
    std::_Exit(1);  // (abort does not return; this tells the compiler so through the virtual call)
  }

  bool supports(const Device& d) const override { return d.is_cpu() || (d.is_cuda() && d.index == device_); }

  std::string describe() const override {
    return "NCCL on cuda:" + std::to_string(device_) + " over " + bootstrap_->describe();
  }

 private:
  // Waits for the stream the collective was queued on; stops the job on an NCCL error or past the
  // deadline (a peer that died leaves NCCL's kernels spinning forever otherwise).
  void wait(const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
    const cuda::NcclApi& api = cuda::nccl();
    for (;;) {
      const cudaError_t state = cudaStreamQuery(cuda::current_stream());
      if (state == cudaSuccess) return;
      if (state != cudaErrorNotReady) cuda::check(state, what);
      ncclResult_t async = ncclSuccess;
      api.comm_get_async_error(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress)
        abort(detail::str_cat("distributed: NCCL ", what, " failed: ", api.error_string(async)));
      if (std::chrono::steady_clock::now() > deadline)
        abort(detail::str_cat("distributed: NCCL ", what, " did not complete within ", timeout_s_,
                              " s (CTXPOOL_DIST_TIMEOUT): a process has died or hangs; stopping the job"));
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  std::shared_ptr<Communicator> bootstrap_;
  int device_;
  double timeout_s_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

bool built_with_nccl() { return true; }

std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator> bootstrap, int device,
                                                double timeout_s) {
  return std::make_shared<NcclCommunicator>(std::move(bootstrap), device, timeout_s);
}

}  // namespace ctxpool::nn::parallel
