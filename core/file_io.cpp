#include "core/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"

namespace ctxpool {

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CTXPOOL_CHECK(fd >= 0, "write_file_atomic: cannot create '", tmp, "': ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      detail::fail("write_file_atomic: writing '", tmp, "' failed: ", err);
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    detail::fail("write_file_atomic: could not write '", path, "': ", err);
  }
  // Make the rename itself durable: flush the directory entry too.
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void check_regular_file(const std::string& path, const char* what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);  // follows symbolic links
  CTXPOOL_CHECK(status.type() != std::filesystem::file_type::not_found, what, ": '", path, "' does not exist");
  CTXPOOL_CHECK(status.type() != std::filesystem::file_type::directory, what, ": '", path,
                "' is a directory, expected a file");
  CTXPOOL_CHECK(!ec && status.type() == std::filesystem::file_type::regular, what, ": '", path,
                "' is not a regular file (a device, pipe or socket: it could be endless)");
}

std::string read_file(const std::string& path) {
  check_regular_file(path, "read_file");
  std::ifstream in(path, std::ios::binary);
  CTXPOOL_CHECK(in.good(), "read_file: cannot open '", path, "'");
  std::string bytes;
  try {
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::exception& e) {  // some streams throw on a read error instead of setting badbit
    detail::fail("read_file: error while reading '", path, "': ", e.what());
  }
  CTXPOOL_CHECK(!in.bad(), "read_file: error while reading '", path, "'");
  return bytes;
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

void make_directories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  CTXPOOL_CHECK(!ec, "make_directories: cannot create '", path, "': ", ec.message());
}

std::string fnv1a_hex(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace ctxpool
