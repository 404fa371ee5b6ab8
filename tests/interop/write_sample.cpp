// Writes a safetensors file with known contents for read_safetensors.py, which checks it with an
// independent reader (struct + json + numpy): our files must open outside ctxpool.
#include <cstdio>

#include "nn/serialize.h"
#include "ops/ops.h"

using namespace ctxpool;

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: write_sample OUT.safetensors\n"), 2;
  nn::save_safetensors(argv[1],
                       {{"weight", ops::reshape(arange(0.0, 6.0, 1.0), {2, 3})},
                        {"bias", tensor({0.5, -0.25}, kFloat64)},
                        {"step", arange(3, kInt64)},
                        {"mask", ops::gt(arange(4), scalar_tensor(1.0))}},
                       {{"format", "ctxpool-test"}});
  return 0;
}
