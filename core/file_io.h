// Whole-file reads and atomic writes: a file is written to "<path>.tmp.<pid>", flushed to disk,
// then renamed over <path>, so a crash never leaves a half-written file under the real name.
#pragma once
#include <string>

namespace ctxpool {

void write_file_atomic(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);  // error naming the path when it cannot be read
// A clear error (prefixed with `what`) unless path names a regular file (after symbolic links):
// missing, a directory, or a device, pipe or socket (/dev/zero would be read forever).
void check_regular_file(const std::string& path, const char* what);
bool file_exists(const std::string& path);
void make_directories(const std::string& path);

// FNV-1a 64-bit hash as 16 hex digits: a cheap checksum that catches truncated or altered files.
std::string fnv1a_hex(const std::string& bytes);

}  // namespace ctxpool
