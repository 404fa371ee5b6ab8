// Collectives on CUDA tensors over NCCL, for data-parallel training on GPUs. NCCL does not launch
// processes or exchange its connection id by itself: another communicator does (MPI's world under
// mpirun, or single_process() for one rank), and it also carries what is not a CUDA tensor.
#pragma once
#include <memory>

#include "nn/parallel/communicator.h"

namespace ctxpool::nn::parallel {

// Whether this build has the NCCL path (CUDA and nccl.h found; libnccl.so.2 is opened at first use).
bool built_with_nccl();

// A communicator over `bootstrap`'s processes in which CUDA tensors (on `device`, one device per
// process) are reduced and broadcast by NCCL, and CPU tensors, barrier and abort go to `bootstrap`.
// Rank 0 makes NCCL's id and `bootstrap` broadcasts it. Every NCCL collective is waited on with a
// deadline of timeout_s: past it, or on an NCCL error, the NCCL communicator is aborted and then the
// job (bootstrap->abort), naming the call. A clear error in a build without NCCL.
std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator> bootstrap, int device,
                                                double timeout_s = 600.0);

// The index of this process among those on its machine, from the launcher's environment (Open MPI,
// MPICH, Slurm), else `rank`: with one GPU per process, the GPU it should use is local_rank % GPUs.
int local_rank(int rank);

}  // namespace ctxpool::nn::parallel
