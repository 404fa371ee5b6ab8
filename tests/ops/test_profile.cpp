// The per-op profile (core/profile.h, CTXPOOL_PROFILE=1): kernel calls are counted under the op that
// made them, in the forward or the backward; backward nodes are timed; reset() forgets; off records
// nothing.
#include <sstream>

#include "core/profile.h"
#include "helpers/test_utils.h"
#include "ops/ops.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

// Turns profiling on for one test and restores the previous state.
class ProfileOn {
 public:
  ProfileOn() : was_(profile::enabled()) {
    profile::set_enabled(true);
    profile::reset();
  }
  ~ProfileOn() {
    profile::set_enabled(was_);
    profile::reset();
  }

 private:
  bool was_;
};

const profile::Row* find(const std::vector<profile::Row>& rows, profile::Table table, profile::Phase phase,
                         const std::string& name) {
  for (const auto& r : rows)
    if (r.table == table && r.phase == phase && r.name == name) return &r;
  return nullptr;
}

}  // namespace

TEST(Profile, CountsKernelCallsByOpAndPhase) {
  const ProfileOn on;
  const Tensor a = randn({8, 16}).requires_grad_(true);
  const Tensor b = randn({16, 4}).requires_grad_(true);
  ops::sum(ops::matmul(a, b)).backward();
  ops::sum(ops::matmul(a, b)).backward();

  const auto rows = profile::rows();
  const auto* fwd = find(rows, profile::Table::Kernels, profile::Phase::Forward, "matmul");
  ASSERT_NE(fwd, nullptr);
  EXPECT_EQ(fwd->calls, 2);  // one product per forward
  EXPECT_GE(fwd->ms, 0.0);
  const auto* bwd = find(rows, profile::Table::Kernels, profile::Phase::Backward, "matmul");
  ASSERT_NE(bwd, nullptr);
  EXPECT_EQ(bwd->calls, 4);  // dA = g B^T and dB = A^T g, twice
  const auto* node = find(rows, profile::Table::BackwardNodes, profile::Phase::Backward, "matmul");
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->calls, 2);
  EXPECT_EQ(profile::current_phase(), profile::Phase::Forward);  // the engine's scope has ended

  std::ostringstream report;
  profile::report(report, 2, 1.0);
  EXPECT_NE(report.str().find("profile: 2 steps"), std::string::npos) << report.str();
  EXPECT_NE(report.str().find("outside kernels"), std::string::npos) << report.str();
  EXPECT_NE(report.str().find("backward nodes"), std::string::npos) << report.str();

  profile::reset();
  EXPECT_TRUE(profile::rows().empty());
}

TEST(Profile, RecordsNothingWhenOff) {
  const bool was = profile::enabled();
  profile::set_enabled(false);
  profile::reset();
  const Tensor a = randn({4, 4}).requires_grad_(true);
  ops::sum(ops::mul(a, a)).backward();
  EXPECT_TRUE(profile::rows().empty());
  profile::set_enabled(was);
}

TEST(Profile, StepProfileForgetsTheWarmUpStepAndSkipsPausedWork) {
  const ProfileOn on;
  profile::StepProfile steps;
  const Tensor a = randn({4, 4});
  (void)ops::matmul(a, a);  // before the first step: forgotten
  steps.after_step(100.0);  // the warm-up step
  (void)ops::matmul(a, a);
  {
    const profile::Pause paused;  // e.g. an evaluation
    (void)ops::matmul(a, a);
    EXPECT_FALSE(profile::enabled());
  }
  EXPECT_TRUE(profile::enabled());
  steps.after_step(2.0);
  steps.after_step(4.0);
  const auto rows = profile::rows();  // (find points into it)
  const auto* mm = find(rows, profile::Table::Kernels, profile::Phase::Forward, "matmul");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->calls, 1);
  std::ostringstream report;
  steps.report(report);
  EXPECT_NE(report.str().find("profile: 2 steps, 3.00 ms/step"), std::string::npos) << report.str();
}
