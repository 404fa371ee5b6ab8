#include "cuda/cudnn.h"

#include <mutex>
#include <string>
#include <vector>

#include "cuda/check.h"
#include "cuda/cuda_api.h"
#include "cuda/dynamic_library.h"

namespace ctxpool::cuda {

namespace {

CudnnApi load_cudnn() {
  std::string name;
  void* lib = open_cuda_library("libcudnn.so." + std::to_string(CUDNN_MAJOR), "cuDNN",
                                "install cuDNN (e.g. pip's nvidia-cudnn-cu13) and put its lib directory on "
                                "LD_LIBRARY_PATH", &name);
  const auto resolve = [&](const char* symbol, auto& out) { resolve_symbol(lib, symbol, "cuDNN", name, out); };
  CudnnApi api{};
  resolve("cudnnGetErrorString", api.error_string);
  resolve("cudnnCreate", api.create);
  resolve("cudnnSetStream", api.set_stream);
  resolve("cudnnCreateTensorDescriptor", api.create_tensor);
  resolve("cudnnSetTensor4dDescriptor", api.set_tensor_4d);
  resolve("cudnnDestroyTensorDescriptor", api.destroy_tensor);
  resolve("cudnnCreateFilterDescriptor", api.create_filter);
  resolve("cudnnSetFilter4dDescriptor", api.set_filter_4d);
  resolve("cudnnDestroyFilterDescriptor", api.destroy_filter);
  resolve("cudnnCreateConvolutionDescriptor", api.create_conv);
  resolve("cudnnSetConvolution2dDescriptor", api.set_conv_2d);
  resolve("cudnnSetConvolutionGroupCount", api.set_group_count);
  resolve("cudnnSetConvolutionMathType", api.set_math_type);
  resolve("cudnnDestroyConvolutionDescriptor", api.destroy_conv);
  resolve("cudnnGetConvolutionForwardAlgorithmMaxCount", api.forward_algorithm_count);
  resolve("cudnnGetConvolutionForwardAlgorithm_v7", api.forward_algorithms);
  resolve("cudnnGetConvolutionForwardWorkspaceSize", api.forward_workspace);
  resolve("cudnnConvolutionForward", api.forward);
  resolve("cudnnGetConvolutionBackwardDataAlgorithmMaxCount", api.backward_data_algorithm_count);
  resolve("cudnnGetConvolutionBackwardDataAlgorithm_v7", api.backward_data_algorithms);
  resolve("cudnnGetConvolutionBackwardDataWorkspaceSize", api.backward_data_workspace);
  resolve("cudnnConvolutionBackwardData", api.backward_data);
  resolve("cudnnGetConvolutionBackwardFilterAlgorithmMaxCount", api.backward_filter_algorithm_count);
  resolve("cudnnGetConvolutionBackwardFilterAlgorithm_v7", api.backward_filter_algorithms);
  resolve("cudnnGetConvolutionBackwardFilterWorkspaceSize", api.backward_filter_workspace);
  resolve("cudnnConvolutionBackwardFilter", api.backward_filter);
  return api;  // the library stays open for the life of the process
}

}  // namespace

bool built_with_cudnn() { return true; }

const CudnnApi& cudnn() {
  static const CudnnApi api = load_cudnn();
  return api;
}

cudnnHandle_t cudnn_handle(int device) {
  static std::mutex mutex;
  static std::vector<cudnnHandle_t> handles;  // never destroyed (the runtime may be gone at exit)
  std::lock_guard<std::mutex> lock(mutex);
  if (handles.size() <= static_cast<size_t>(device)) handles.resize(device + 1, nullptr);
  const CudnnApi& api = cudnn();
  if (handles[device] == nullptr) {
    set_device(device);
    check_cudnn(api.create(&handles[device]), "cudnnCreate");
  }
  check_cudnn(api.set_stream(handles[device], current_stream()), "cudnnSetStream");
  return handles[device];
}

}  // namespace ctxpool::cuda
