// Post-accumulate-grad hooks (autograd/hooks.h): when they run, how often, in what order, and what
// they refuse.
#include <string>
#include <vector>

#include "autograd/hooks.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;

TEST(Hooks, RunOnceAfterTheGradientIsAccumulatedFromEveryPath) {
  manual_seed(0);
  const Tensor w = param({3});
  std::vector<std::vector<double>> seen;
  const auto id = autograd::register_post_accumulate_grad_hook(w, [&] { seen.push_back(w.grad().to_vector<double>()); });
  // Two paths into w: the hook sees their sum, once.
  ops::sum(ops::add(ops::mul(w, w), ops::mul(w, ops::scalar_like(3.0, w)))).backward();
  ASSERT_EQ(seen.size(), 1u);
  std::vector<double> want = w.detach().to_vector<double>();
  for (double& v : want) v = 2 * v + 3;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(seen[0][i], want[i], 1e-14);
  ops::sum(w).backward();  // once per backward
  EXPECT_EQ(seen.size(), 2u);
  autograd::remove_post_accumulate_grad_hook(w, id);
  ops::sum(w).backward();
  EXPECT_EQ(seen.size(), 2u);
}

TEST(Hooks, LeavesNearerTheLossComeFirst) {
  manual_seed(1);
  const Tensor first = param({2}), last = param({2});
  std::string order;
  autograd::register_post_accumulate_grad_hook(first, [&] { order += "first "; });
  autograd::register_post_accumulate_grad_hook(last, [&] { order += "last "; });
  ops::sum(ops::mul(ops::tanh(ops::tanh(first)), last)).backward();
  EXPECT_EQ(order, "last first ");
}

TEST(Hooks, SeveralOnOneLeafRunInRegistrationOrder) {
  const Tensor w = param({1});
  std::string order;
  autograd::register_post_accumulate_grad_hook(w, [&] { order += "a"; });
  autograd::register_post_accumulate_grad_hook(w, [&] { order += "b"; });
  ops::sum(w).backward();
  EXPECT_EQ(order, "ab");
}

TEST(Hooks, OnlyLeavesThatRequireGradTakeThem) {
  const Tensor w = param({2});
  EXPECT_ERROR_WITH(autograd::register_post_accumulate_grad_hook(ops::mul(w, w), [] {}), "register_post_accumulate_"
                    "grad_hook", "the result of an op");
  EXPECT_ERROR_WITH(autograd::register_post_accumulate_grad_hook(ones({2}), [] {}), "does not require grad");
  EXPECT_ERROR_WITH(autograd::remove_post_accumulate_grad_hook(w, 123456789), "has no hook 123456789");
}
