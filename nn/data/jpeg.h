// JPEG files through libjpeg(-turbo): decoding to 8-bit RGB or grey pixels, and encoding (for tests
// and tools). Without libjpeg at build time both are clear errors saying how to get it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ctxpool::nn::data {

struct DecodedImage {
  int64_t height = 0, width = 0, channels = 0;  // channels 3 (RGB) or 1 (greyscale)
  std::vector<uint8_t> pixels;                  // interleaved, row-major: (y * width + x) * channels + c
};

bool jpeg_supported();  // built with libjpeg
// A corrupt, truncated or non-JPEG file is an error naming it (libjpeg's own message included).
DecodedImage decode_jpeg(const std::string& path);
void encode_jpeg(const std::string& path, const DecodedImage& image, int quality = 95);

}  // namespace ctxpool::nn::data
