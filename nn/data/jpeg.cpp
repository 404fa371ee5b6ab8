#include "nn/data/jpeg.h"

#include "core/error.h"

#ifdef CTXPOOL_HAVE_JPEG
#include <csetjmp>
#include <cstdio>
#include <memory>

#include <jpeglib.h>
#endif

namespace ctxpool::nn::data {

#ifdef CTXPOOL_HAVE_JPEG

namespace {

// libjpeg reports errors through a callback that must not return: jump back to the caller, which
// turns the message into an exception once libjpeg's state is cleaned up.
struct ErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr info) {
  auto* err = reinterpret_cast<ErrorManager*>(info->err);
  (*info->err->format_message)(info, err->message);
  std::longjmp(err->jump, 1);
}

using File = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

}  // namespace

bool jpeg_supported() { return true; }

DecodedImage decode_jpeg(const std::string& path) {
  File file(std::fopen(path.c_str(), "rb"), &std::fclose);
  CTXPOOL_CHECK(file != nullptr, "jpeg: cannot open '", path, "'");
  jpeg_decompress_struct info;
  ErrorManager err;
  info.err = jpeg_std_error(&err.base);
  err.base.error_exit = on_error;
  DecodedImage out;  // declared before setjmp: nothing with a destructor is created between it and longjmp
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&info);
    detail::fail("jpeg: cannot decode '", path, "': ", err.message);
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, file.get());
  jpeg_read_header(&info, TRUE);
  info.out_color_space = info.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  out.height = info.output_height;
  out.width = info.output_width;
  out.channels = info.output_components;
  out.pixels.resize(static_cast<size_t>(out.height * out.width * out.channels));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out.pixels.data() + static_cast<size_t>(info.output_scanline) * out.width * out.channels;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return out;
}

void encode_jpeg(const std::string& path, const DecodedImage& image, int quality) {
  CTXPOOL_CHECK((image.channels == 1 || image.channels == 3) && image.height > 0 && image.width > 0 &&
                    image.pixels.size() == static_cast<size_t>(image.height * image.width * image.channels),
                "jpeg: cannot encode an image of ", image.height, "x", image.width, "x", image.channels, " with ",
                image.pixels.size(), " pixel bytes");
  File file(std::fopen(path.c_str(), "wb"), &std::fclose);
  CTXPOOL_CHECK(file != nullptr, "jpeg: cannot create '", path, "'");
  jpeg_compress_struct info;
  ErrorManager err;
  info.err = jpeg_std_error(&err.base);
  err.base.error_exit = on_error;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&info);
    detail::fail("jpeg: cannot encode '", path, "': ", err.message);
  }
  jpeg_create_compress(&info);
  jpeg_stdio_dest(&info, file.get());
  info.image_width = static_cast<JDIMENSION>(image.width);
  info.image_height = static_cast<JDIMENSION>(image.height);
  info.input_components = static_cast<int>(image.channels);
  info.in_color_space = image.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(image.pixels.data()) +
                   static_cast<size_t>(info.next_scanline) * image.width * image.channels;
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
}

#else

bool jpeg_supported() { return false; }

DecodedImage decode_jpeg(const std::string& path) {
  detail::fail("jpeg: cannot decode '", path, "': ctxpool was built without libjpeg (apt-get install "
               "libjpeg62-turbo-dev, scripts/setup.sh does, and configure again)");
}

void encode_jpeg(const std::string& path, const DecodedImage&, int) {
  detail::fail("jpeg: cannot encode '", path, "': ctxpool was built without libjpeg (apt-get install "
               "libjpeg62-turbo-dev, scripts/setup.sh does, and configure again)");
}

#endif

}  // namespace ctxpool::nn::data
