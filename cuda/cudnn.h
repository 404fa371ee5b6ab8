// cuDNN for the CUDA convolution kernels (ops/cuda/cudnn_conv2d.cpp): loaded on first use, one handle
// per device bound to current_stream(), and status checking that names the call.
//
// Like cuBLAS, the library is opened with dlopen (libcudnn.so.9, which loads its sub-libraries),
// not linked, so processes that never convolve on a GPU do not pay for loading it. Built only where
// CMake finds cudnn.h (CTXPOOL_WITH_CUDNN); elsewhere conv2d runs as im2col + cuBLAS on the GPU.
//
// The API is cuDNN's legacy convolution API (cudnnConvolutionForward and its two backward calls),
// which cuDNN 9 deprecates but still ships. The graph API is the lasting one, but in C it takes
// several hundred lines of backend descriptors per operation (NVIDIA's C++ frontend, which hides
// them, is not installed here); the legacy calls do the same convolutions in a few lines, behind the
// kernel table, so moving to the graph API later replaces one file.
#pragma once
#include <cudnn.h>

#include "core/error.h"

namespace ctxpool::cuda {

// The entry points ctxpool uses, resolved from the loaded library.
struct CudnnApi {
  decltype(&cudnnGetErrorString) error_string;
  decltype(&cudnnCreate) create;
  decltype(&cudnnSetStream) set_stream;
  decltype(&cudnnCreateTensorDescriptor) create_tensor;
  decltype(&cudnnSetTensor4dDescriptor) set_tensor_4d;
  decltype(&cudnnDestroyTensorDescriptor) destroy_tensor;
  decltype(&cudnnCreateFilterDescriptor) create_filter;
  decltype(&cudnnSetFilter4dDescriptor) set_filter_4d;
  decltype(&cudnnDestroyFilterDescriptor) destroy_filter;
  decltype(&cudnnCreateConvolutionDescriptor) create_conv;
  decltype(&cudnnSetConvolution2dDescriptor) set_conv_2d;
  decltype(&cudnnSetConvolutionGroupCount) set_group_count;
  decltype(&cudnnSetConvolutionMathType) set_math_type;
  decltype(&cudnnDestroyConvolutionDescriptor) destroy_conv;
  decltype(&cudnnGetConvolutionForwardAlgorithmMaxCount) forward_algorithm_count;
  decltype(&cudnnGetConvolutionForwardAlgorithm_v7) forward_algorithms;
  decltype(&cudnnGetConvolutionForwardWorkspaceSize) forward_workspace;
  decltype(&cudnnConvolutionForward) forward;
  decltype(&cudnnGetConvolutionBackwardDataAlgorithmMaxCount) backward_data_algorithm_count;
  decltype(&cudnnGetConvolutionBackwardDataAlgorithm_v7) backward_data_algorithms;
  decltype(&cudnnGetConvolutionBackwardDataWorkspaceSize) backward_data_workspace;
  decltype(&cudnnConvolutionBackwardData) backward_data;
  decltype(&cudnnGetConvolutionBackwardFilterAlgorithmMaxCount) backward_filter_algorithm_count;
  decltype(&cudnnGetConvolutionBackwardFilterAlgorithm_v7) backward_filter_algorithms;
  decltype(&cudnnGetConvolutionBackwardFilterWorkspaceSize) backward_filter_workspace;
  decltype(&cudnnConvolutionBackwardFilter) backward_filter;
};
const CudnnApi& cudnn();

inline void check_cudnn(cudnnStatus_t status, const char* what) {
  CTXPOOL_CHECK(status == CUDNN_STATUS_SUCCESS, "cudnn: ", what, " failed: ", cudnn().error_string(status));
}

// The handle for `device` (made current by the caller), bound to current_stream().
cudnnHandle_t cudnn_handle(int device);

}  // namespace ctxpool::cuda
