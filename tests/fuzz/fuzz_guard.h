// What every fuzz target checks besides memory safety (ASan) and undefined behaviour (UBSan): a
// malformed input ends in a ctxpool::Error, the clear message users see. Any other exception
// escaping the library (std::out_of_range, a JSON type error, std::bad_alloc from a size taken on
// trust) is a finding: the target aborts so that libFuzzer saves the input.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "core/error.h"

namespace ctxpool::fuzz {

template <typename Fn> void expect_only_clear_errors(const char* target, Fn&& fn) {
  try {
    fn();
  } catch (const ctxpool::Error&) {
    // a clear refusal: what a malformed input should get
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: an exception other than ctxpool::Error escaped: %s\n", target, e.what());
    std::abort();
  }
}

}  // namespace ctxpool::fuzz
