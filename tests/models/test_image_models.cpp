// ViT and ConvNet: shapes, where ContextPool2d sits and that gradients reach it, float64 gradient
// checks through whole models, FLOP counts, config errors; and the image trainer end to end on a
// synthetic task (learning, exact resumption, test accuracy in metrics.jsonl).
#include <filesystem>
#include <sstream>

#include <unistd.h>

#include "autograd/gradcheck.h"
#include "core/file_io.h"
#include "helpers/test_utils.h"
#include "helpers/tiny_images.h"
#include "models/convnet.h"
#include "models/vit.h"
#include "ops/ops.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

models::ModelConfig vit_config(const std::string& pooling, bool cp, const std::string& placement = "attn_input",
                               const std::string& pooled = "kv") {
  models::ModelConfig c = tiny_image_config("vit", "unused", 1).model;
  c.n_layers = 2;
  c.image.in_channels = 1;
  c.image.image_size = 8;
  c.image.num_classes = 10;
  c.image.pooling = pooling;
  c.context_pool.enabled = cp;
  c.context_pool.placement = placement;
  c.context_pool.pooled = pooled;
  return c;
}

models::ModelConfig convnet_config(const std::string& downsample) {
  models::ModelConfig c = tiny_image_config("convnet", "unused", 1).model;
  c.image.in_channels = 1;
  c.image.image_size = 8;
  c.image.num_classes = 10;
  c.image.downsample = downsample;
  return c;
}

// Every parameter gets a non-zero gradient from one backward of the summed logits' squares.
void expect_every_parameter_learns(models::ImageClassifier& model, const Tensor& images) {
  model.zero_grad();
  ops::sum(ops::mul(model.forward(images), model.forward(images))).backward();
  for (auto& [name, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(ops::sum(ops::abs(p.grad())).item(), 0.0) << name;
  }
}

std::string temp_run(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/ctxpool_img_" + name + "_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace

TEST(VisionTransformer, ShapesAndPoolPlacements) {
  manual_seed(0);
  const Tensor images = randn({3, 1, 8, 8});
  for (const char* pooling : {"cls", "mean"}) {
    auto plain = std::make_shared<models::VisionTransformer>(vit_config(pooling, false));
    EXPECT_EQ(plain->forward(images).sizes(), Shape({3, 10}));
    EXPECT_EQ(plain->grid(), 4);
    EXPECT_TRUE(plain->context_pools().empty());
    EXPECT_EQ(plain->cls_token.defined(), std::string(pooling) == "cls");
    EXPECT_EQ(plain->pos_emb.sizes(), Shape({1, std::string(pooling) == "cls" ? 17 : 16, 16}));
  }
  // attn_input: one pool per block, and kv splits the projections; between: one per inner boundary.
  auto kv = std::make_shared<models::VisionTransformer>(vit_config("cls", true, "attn_input", "kv"));
  EXPECT_EQ(kv->context_pools().size(), 2u);
  EXPECT_TRUE(std::static_pointer_cast<nn::TransformerBlock>((*kv->blocks)[0])->attn->kv != nullptr);
  auto qkv = std::make_shared<models::VisionTransformer>(vit_config("mean", true, "attn_input", "qkv"));
  EXPECT_TRUE(std::static_pointer_cast<nn::TransformerBlock>((*qkv->blocks)[0])->attn->qkv != nullptr);
  auto between = std::make_shared<models::VisionTransformer>(vit_config("cls", true, "between"));
  EXPECT_EQ(between->context_pools().size(), 1u);
  for (auto* m : {kv.get(), qkv.get(), between.get()}) {
    EXPECT_EQ(m->forward(images).sizes(), Shape({3, 10}));
    expect_every_parameter_learns(*m, images);
    const auto diag = m->diagnostics();
    ASSERT_FALSE(diag.empty());
    EXPECT_EQ(diag[0].first, "cp_support/0");
    EXPECT_GT(diag[0].second, 0.0);
  }
  EXPECT_ERROR_WITH(kv->forward(randn({3, 1, 6, 6})), "expected images [B, 1, 8, 8]");
}

// The class token is never pooled: with ContextPool between blocks and a single patch that
// changes, the class token after the pool must equal the plain model's computation up to it.
TEST(VisionTransformer, PoolingChangesPatchesButNotTheClassToken) {
  manual_seed(1);
  auto m = std::make_shared<models::VisionTransformer>(vit_config("cls", true, "between"));
  m->eval();
  const Tensor images = randn({2, 1, 8, 8});
  // Recompute the first block by hand, then the pool, and compare the class token row.
  const Tensor tokens = ops::reshape(m->patch_embed->forward(images), {2, 16, 16});
  const Tensor x = ops::add(ops::cat({ops::expand(m->cls_token, {2, 1, 16}), tokens}, 1), m->pos_emb);
  const Tensor after_block = (*m->blocks)[0]->forward(x);
  auto pool = m->context_pools()[0];
  const Tensor grid = ops::reshape(ops::slice(after_block, 1, 1, 17), {2, 4, 4, 16});
  const Tensor pooled = pool->forward(grid);
  EXPECT_GT(ops::max(ops::abs(ops::sub(pooled, grid))).item(), 1e-3);  // the patches really are pooled
  // The full model's logits equal the hand-built path's.
  Tensor y = ops::cat({ops::slice(after_block, 1, 0, 1), ops::reshape(pooled, {2, 16, 16})}, 1);
  y = (*m->blocks)[1]->forward(y);
  const Tensor logits = m->head->forward(ops::select(m->ln_f->forward(y), 1, 0));
  EXPECT_LT(ops::max(ops::abs(ops::sub(logits, m->forward(images)))).item(), 1e-5);
}

TEST(VisionTransformer, GradcheckThroughTheWholeModelInFloat64) {
  manual_seed(2);
  models::ModelConfig c = vit_config("cls", true, "attn_input", "kv");
  c.n_layers = 1;
  c.d_model = 8;
  c.image.image_size = 4;
  c.image.num_classes = 3;
  auto m = std::make_shared<models::VisionTransformer>(c, kFloat64);
  const Tensor images = randn({2, 1, 4, 4}, kFloat64).requires_grad_(true);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return m->forward(in[0]); }, {images});
}

TEST(ConvNet, ShapesDownsamplingAndFlops) {
  manual_seed(3);
  const Tensor images = randn({4, 1, 8, 8});
  auto maxpool = std::make_shared<models::ConvNet>(convnet_config("max_pool"));
  auto cp = std::make_shared<models::ConvNet>(convnet_config("context_pool"));
  EXPECT_EQ(maxpool->forward(images).sizes(), Shape({4, 10}));
  EXPECT_EQ(cp->forward(images).sizes(), Shape({4, 10}));
  EXPECT_TRUE(maxpool->context_pools().empty());
  ASSERT_EQ(cp->context_pools().size(), 1u);
  EXPECT_EQ(cp->context_pools()[0]->options().pool.stride, 2);
  expect_every_parameter_learns(*cp, images);
  // The batch norms' running statistics are saved with the weights.
  const auto state = cp->state_dict();
  EXPECT_TRUE(state.count("norms.0.running_mean"));
  EXPECT_TRUE(state.count("norms.1.num_batches_tracked"));
  // By hand: conv 1->8 at 8x8, conv 8->16 at 4x4, head 16->10.
  const double convs = 2.0 * 9 * 1 * 8 * 64 + 2.0 * 9 * 8 * 16 * 16, head = 2.0 * 16 * 10;
  EXPECT_DOUBLE_EQ(maxpool->flops_per_image(), convs + head);
  EXPECT_DOUBLE_EQ(cp->flops_per_image(), convs + head + models::context_pool2d_flops(*cp->context_pools()[0], 8, 8, 8));
}

// model.context_pool.kernel_size sets the 2-D predictor's kernel too (it was once ignored there).
TEST(ConvNet, ContextPoolKernelSizeReachesThePredictor) {
  models::ModelConfig c = convnet_config("context_pool");
  c.context_pool.kernel_size = 5;
  auto five = std::make_shared<models::ConvNet>(c);
  const auto& pool = *five->context_pools()[0];
  EXPECT_EQ(pool.conv1->kernel_size, (std::array<int64_t, 2>{5, 5}));
  EXPECT_EQ(pool.conv2->kernel_size, (std::array<int64_t, 2>{5, 5}));
  EXPECT_EQ(five->forward(randn({2, 1, 8, 8})).sizes(), Shape({2, 10}));
  // The predictor's FLOPs count 25 taps instead of 9 (d 8 at 8x8).
  auto three = std::make_shared<models::ConvNet>(convnet_config("context_pool"));
  const double hid = static_cast<double>(pool.conv1->out_channels);
  EXPECT_DOUBLE_EQ(models::context_pool2d_flops(pool, 8, 8, 8) -
                       models::context_pool2d_flops(*three->context_pools()[0], 8, 8, 8),
                   2.0 * (25 - 9) * (8 * hid + hid * 2) * 64);
  c.context_pool.kernel_size = 4;
  EXPECT_ERROR_WITH(models::ConvNet{c}, "'model.context_pool.kernel_size' must be odd", "got 4");
  nn::ContextPool2dOptions even;
  even.kernel_size = 4;
  EXPECT_ERROR_WITH(nn::ContextPool2d(8, even), "ContextPool2d: kernel_size must be odd", "got 4");
}

TEST(ConvNet, GradcheckThroughTheWholeModelInFloat64) {
  manual_seed(4);
  models::ModelConfig c = convnet_config("context_pool");
  c.image.image_size = 4;
  c.image.channels = {2, 3};
  c.image.num_classes = 3;
  auto m = std::make_shared<models::ConvNet>(c, kFloat64);
  const Tensor images = randn({3, 1, 4, 4}, kFloat64).requires_grad_(true);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return m->forward(in[0]); }, {images});
}

TEST(ImageConfig, ErrorsNameTheKey) {
  using models::RunConfig;
  const nlohmann::json images = {{"dataset", "fashion_mnist"}};
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"type", "vit"}}}}), "cannot train on data.dataset \"text\"");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"data", images}}), "model.type \"transformer_lm\" cannot train");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"type", "vit"}, {"attention", "local"}}}, {"data", images}}),
                    "supports attention \"full\" only");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"type", "vit"}, {"image", {{"pooling", "max"}}}}}, {"data", images}}),
                    "'model.image.pooling'");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"type", "convnet"}, {"image", {{"channels", {8, -1}}}}}}, {"data", images}}),
                    "'model.image.channels' must be positive");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"type", "convnet"}, {"image", {{"chanels", {8}}}}}}, {"data", images}}),
                    "unknown key 'model.image.chanels'");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"type", "convnet"}, {"image", {{"downsample", "context_pool"}}},
                                                     {"context_pool", {{"residual", true}}}}}, {"data", images}}),
                    "cannot be residual");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"type", "vit"}, {"context_pool", {{"kernel_size", 2}}}}}, {"data", images}}),
                    "'model.context_pool.kernel_size' must be odd");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"data", {{"dataset", "cifar100"}}}}), "'data.dataset' must be");
  // Round trip, and a language model's config has no image keys.
  const auto c = RunConfig::from_json({{"model", {{"type", "convnet"}, {"image", {{"channels", {4, 8}}}}}}, {"data", images}});
  EXPECT_EQ(c.data.path, "data/fashion-mnist");
  EXPECT_EQ(RunConfig::from_json(c.to_json()).to_json(), c.to_json());
  EXPECT_FALSE(RunConfig().to_json()["model"].contains("image"));
  EXPECT_FALSE(RunConfig().to_json()["data"].contains("crop_padding"));
}

TEST(ImageTrainer, TinyModelsLearnAndReportTestAccuracy) {
  for (const char* type : {"convnet", "vit"}) {
    const std::string dir = temp_run(std::string("learn_") + type);
    models::RunConfig c = tiny_image_config(type, dir, 300);
    c.model.context_pool.enabled = true;  // vit: attn_input kv; the convnet keeps max pooling
    c.train.keep_best = true;
    c.train.eval_interval = 100;
    c.optim.lr = 1e-2;
    models::ImageTrainer trainer(c, block_data());
    EXPECT_EQ(trainer.config().model.image.num_classes, 10);
    const double before = trainer.evaluate_test().acc;
    trainer.fit();
    EXPECT_LT(before, 0.3) << type;
    EXPECT_GT(trainer.best_val_acc(), 0.9) << type;
    EXPECT_GT(trainer.test_result().acc, 0.85) << type;
    // The last metrics line holds the test accuracy, of the best validation step's weights.
    std::istringstream lines(read_file(dir + "/metrics.jsonl"));
    std::string line, last;
    while (std::getline(lines, line)) last = line;
    const auto j = nlohmann::json::parse(last);
    EXPECT_DOUBLE_EQ(j.at("test_acc").get<double>(), trainer.test_result().acc);
    EXPECT_EQ(j.at("test_weights_step").get<int64_t>(), trainer.best_step());
    EXPECT_TRUE(nlohmann::json::parse(read_file(dir + "/model.json")).contains("flops_per_image"));
  }
}

TEST(ImageTrainer, ResumesExactly) {
  const std::string straight_dir = temp_run("straight"), resumed_dir = temp_run("resumed");
  models::RunConfig c = tiny_image_config("convnet", straight_dir, 24);
  c.data.crop_padding = 1;  // augmentation and shuffling must resume exactly too
  c.data.horizontal_flip = true;
  c.model.image.downsample = "context_pool";
  c.model.dropout = 0.0;
  models::ImageTrainer straight(c, block_data(100));  // 3 batches of 32 per epoch: crosses epochs
  straight.fit();
  c.train.run_dir = resumed_dir;
  c.train.stop_after = 10;
  {
    models::ImageTrainer first(c, block_data(100));
    first.fit();
    EXPECT_EQ(first.step(), 10);
  }
  models::ImageTrainer second(c, block_data(100), true);
  EXPECT_EQ(second.step(), 10);
  second.fit();  // stops at 20
  models::ImageTrainer third(c, block_data(100), true);
  third.fit();
  EXPECT_EQ(third.step(), 24);
  // The same losses, bit for bit, and the same test accuracy.
  std::istringstream s_lines(read_file(straight_dir + "/metrics.jsonl")), r_lines(read_file(resumed_dir + "/metrics.jsonl"));
  std::string s_line, r_line;
  int64_t count = 0;
  while (std::getline(s_lines, s_line)) {
    ASSERT_TRUE(static_cast<bool>(std::getline(r_lines, r_line)));
    const auto js = nlohmann::json::parse(s_line), jr = nlohmann::json::parse(r_line);
    for (const char* key : {"step", "train_loss", "grad_norm", "val_acc", "test_acc"})
      EXPECT_EQ(js.value(key, -1.0), jr.value(key, -1.0)) << key << " in line " << count;
    ++count;
  }
  EXPECT_EQ(count, 25);  // 24 steps and the test line
  EXPECT_FALSE(static_cast<bool>(std::getline(r_lines, r_line)));
  const auto a = straight.model().state_dict(), b = third.model().state_dict();
  for (const auto& [name, t] : a)
    EXPECT_EQ(ops::max(ops::abs(ops::sub(t.to(kFloat64), b.at(name).to(kFloat64)))).item(), 0.0) << name;
  // A different model is refused on resume.
  c.model.image.channels = {8, 8};
  EXPECT_ERROR_WITH(models::ImageTrainer(c, block_data(100), true), "differs from the checkpoint");
}
