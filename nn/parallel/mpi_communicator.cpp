// The Communicator over MPI's world (built only when CMake finds MPI: CTXPOOL_WITH_MPI).
//
// Collectives are the non-blocking MPI calls, waited on with a deadline: past it, the job is aborted
// with a message naming the call, instead of waiting forever on a process that died or hangs.
// all_reduce_sum is a reduce to rank 0 followed by a broadcast, not MPI_Allreduce: MPI does not
// promise that every process gets the same bits from an all-reduce (ring algorithms add the chunks in
// a different order on each rank), and replicas whose weights drift apart by an ulp a step would not
// stay one model. Reduce + broadcast gives every process rank 0's sum exactly.
#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "nn/parallel/communicator.h"

namespace ctxpool::nn::parallel {

namespace {

// Initialises MPI on construction and finalises it at exit (mpirun counts a process that exits
// without MPI_Finalize as failed).
struct MpiRuntime {
  MpiRuntime() {
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      CTXPOOL_CHECK(provided >= MPI_THREAD_FUNNELED, "distributed: this MPI does not support threads (level ",
                    provided, "); ctxpool's OpenMP kernels need MPI_THREAD_FUNNELED");
      owned = true;
    }
  }
  ~MpiRuntime() {
    int done = 0;
    MPI_Finalized(&done);
    if (owned && !done) MPI_Finalize();
  }
  bool owned = false;
};

MPI_Datatype mpi_type(const Tensor& t, const char* op) {
  CTXPOOL_CHECK(t.defined() && t.device().is_cpu() && t.is_contiguous(), "distributed ", op,
                ": expected a contiguous CPU tensor, got ", t.defined() ? shape_str(t.sizes()) : "undefined",
                t.defined() ? detail::str_cat(" on ", t.device()) : "",
                t.defined() && t.device().is_cuda() ? " (CUDA tensors go through nccl_communicator)" : "");
  if (t.dtype() == kFloat32) return MPI_FLOAT;
  if (t.dtype() == kFloat64) return MPI_DOUBLE;
  if (t.dtype() == kInt64) return MPI_INT64_T;
  detail::fail("distributed ", op, ": dtype ", t.dtype(), " is not supported (float32, float64, int64)");
}

class MpiWorld : public Communicator {
 public:
  explicit MpiWorld(double timeout_s) : timeout_s_(timeout_s) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce_sum(const Tensor& t) override {
    const MPI_Datatype type = mpi_type(t, "all_reduce_sum");
    for_chunks(t, [&](char* p, int n) {
      MPI_Request req;
      MPI_Ireduce(rank_ == 0 ? MPI_IN_PLACE : p, rank_ == 0 ? p : nullptr, n, type, MPI_SUM, 0, MPI_COMM_WORLD, &req);
      wait(req, "all_reduce_sum (reduce to rank 0)");
      MPI_Ibcast(p, n, type, 0, MPI_COMM_WORLD, &req);
      wait(req, "all_reduce_sum (broadcast from rank 0)");
    });
  }

  // Reduce, then broadcast, each started when done() finds its predecessor finished. Tensors of more
  // than INT_MAX elements (several MPI calls) are reduced at once instead.
  std::unique_ptr<PendingCollective> all_reduce_sum_async(const Tensor& t) override {
    if (t.numel() > INT_MAX) return Communicator::all_reduce_sum_async(t);
    return std::make_unique<AllReduce>(*this, t, mpi_type(t, "all_reduce_sum"));
  }

  void broadcast(const Tensor& t, int root) override {
    CTXPOOL_CHECK(root >= 0 && root < size_, "distributed broadcast: root ", root, " is not a rank of ", size_);
    const MPI_Datatype type = mpi_type(t, "broadcast");
    for_chunks(t, [&](char* p, int n) {
      MPI_Request req;
      MPI_Ibcast(p, n, type, root, MPI_COMM_WORLD, &req);
      wait(req, "broadcast");
    });
  }

  void barrier() override {
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    wait(req, "barrier");
  }

  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "[rank %d of %d] %s\n", rank_, size_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);  // (MPI_Abort does not return)
  }

  std::string describe() const override { return "MPI, " + std::to_string(size_) + " processes"; }

 private:
  // f(pointer, count) over pieces of at most INT_MAX elements (MPI counts are ints).
  template <typename F>
  static void for_chunks(const Tensor& t, const F& f) {
    char* base = static_cast<char*>(t.raw_data());
    const int64_t item = static_cast<int64_t>(ctxpool::element_size(t.dtype()));
    for (int64_t first = 0; first < t.numel(); first += INT_MAX) {
      const int64_t n = std::min<int64_t>(INT_MAX, t.numel() - first);
      f(base + first * item, static_cast<int>(n));
    }
  }

  class AllReduce : public PendingCollective {
   public:
    AllReduce(MpiWorld& world, const Tensor& t, MPI_Datatype type)
        : world_(world), t_(t), type_(type), n_(static_cast<int>(t.numel())) {
      MPI_Ireduce(world_.rank_ == 0 ? MPI_IN_PLACE : t_.raw_data(), world_.rank_ == 0 ? t_.raw_data() : nullptr, n_,
                  type_, MPI_SUM, 0, MPI_COMM_WORLD, &req_);
    }
    bool done() override {
      if (stage_ == 2) return true;
      int finished = 0;
      MPI_Test(&req_, &finished, MPI_STATUS_IGNORE);
      if (!finished) return false;
      if (++stage_ == 2) return true;
      MPI_Ibcast(t_.raw_data(), n_, type_, 0, MPI_COMM_WORLD, &req_);  // the sum, from rank 0
      return false;
    }
    void wait() override { world_.wait_until([this] { return done(); }, "all_reduce_sum (asynchronous)"); }

   private:
    MpiWorld& world_;
    Tensor t_;
    MPI_Datatype type_;
    int n_;
    MPI_Request req_;
    int stage_ = 0;  // 0: reducing to rank 0, 1: broadcasting, 2: finished
  };

  // Waits for req; past the deadline, stops the job.
  void wait(MPI_Request& req, const char* what) {
    wait_until([&req] {
      int done = 0;
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      return done != 0;
    }, what);
  }

  // Polls finished() until it is true; past the deadline, stops the job.
  template <typename Finished>
  void wait_until(const Finished& finished, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
    for (int polls = 0;; ++polls) {
      if (finished()) return;
      if (std::chrono::steady_clock::now() > deadline)
        abort(detail::str_cat("distributed: ", what, " did not complete within ", timeout_s_,
                              " s: another process died or stopped responding (CTXPOOL_DIST_TIMEOUT sets the limit)"));
      // Spin briefly (collectives are usually quick), then yield the core to the other processes.
      if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  int rank_ = 0, size_ = 1;
  double timeout_s_;
};

}  // namespace

bool built_with_mpi() { return true; }

std::shared_ptr<Communicator> mpi_world(double timeout_s) {
  CTXPOOL_CHECK(timeout_s > 0, "distributed: the collective timeout must be positive, got ", timeout_s);
  static MpiRuntime runtime;
  static std::mutex mutex;
  static std::shared_ptr<Communicator> world;
  std::lock_guard<std::mutex> lock(mutex);
  static double world_timeout = 0;
  if (!world) {
    world = std::make_shared<MpiWorld>(timeout_s);
    world_timeout = timeout_s;
  }
  CTXPOOL_CHECK(timeout_s == world_timeout, "distributed: MPI's world was made with a ", world_timeout,
                " s collective timeout; it cannot be changed to ", timeout_s, " s");
  return world;
}

}  // namespace ctxpool::nn::parallel
