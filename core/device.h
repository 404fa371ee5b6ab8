// Where a tensor's memory lives: the CPU, or one CUDA device.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>

namespace ctxpool {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  Device() = default;
  Device(DeviceType t, int i = 0) : type(t), index(i) {}
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && (is_cpu() || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

inline const Device kCPU{DeviceType::CPU, 0};
inline Device cuda_device(int index = 0) { return Device(DeviceType::CUDA, index); }

// "cpu", "cuda" (= "cuda:0") or "cuda:N"; anything else is an error listing these (core/device.cpp).
// Whether the device exists is checked where it is used (a tensor or module moved there).
Device parse_device(const std::string& text);

inline std::ostream& operator<<(std::ostream& os, const Device& d) {
  if (d.is_cpu()) return os << "cpu";
  return os << "cuda:" << d.index;
}

}  // namespace ctxpool
