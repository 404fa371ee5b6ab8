#include "models/transformer_lm.h"

#include <algorithm>

#include "nn/init.h"
#include "ops/ops.h"

namespace ctxpool::models {

void init_transformer_weights(nn::Module& model, double init_std) {
  for (auto& [name, p] : model.named_parameters()) {
    if (p.dim() >= 2) {
      nn::init::normal_(p, 0.0, init_std);
    } else if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      nn::init::zeros_(p);
    }
  }
}

nn::ContextPool1dOptions context_pool_options(const ContextPoolConfig& c) {
  nn::ContextPool1dOptions o;
  o.pool.window = c.window;
  o.pool.causal = true;
  o.pool.s_min = c.s_min;
  if (c.s_max > 0) o.pool.s_max = c.s_max;
  if (c.s_fixed > 0) o.pool.s_fixed = c.s_fixed;
  o.pool.mode = ops::context_pool_mode_from_string(c.mode);
  o.hidden = c.hidden;
  o.kernel_size = c.kernel_size;
  o.residual = c.residual;
  o.lambda = c.lambda;
  return o;
}

TransformerLM::TransformerLM(const ModelConfig& c)
    : TransformerLM(c, c.dtype == "float64" ? kFloat64 : kFloat32) {}

TransformerLM::TransformerLM(const ModelConfig& c, DType dtype) : nn::Module("TransformerLM"), config_(c) {
  CTXPOOL_CHECK(c.type == "transformer_lm", "TransformerLM: model.type must be \"transformer_lm\", got \"", c.type,
                "\"");
  CTXPOOL_CHECK(c.vocab_size > 0, "TransformerLM: vocab_size must be positive, got ", c.vocab_size);
  c.validate();
  tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(c.vocab_size, c.d_model, dtype));
  pos_emb = register_parameter("pos_emb", empty({c.context, c.d_model}, dtype));
  const ContextPoolConfig& cp = c.context_pool;
  nn::TransformerBlockOptions block;
  block.dim = c.d_model;
  block.heads = c.n_heads;
  block.mlp_hidden = c.d_mlp;
  block.causal = true;
  block.dropout = c.dropout;
  block.gelu_approximate = c.gelu;
  block.attention = nn::attention_kind_from_string(c.attention);
  block.local_window = c.local_window;
  block.span.max_span = c.adaptive_span.max_span > 0 ? c.adaptive_span.max_span : c.context;
  block.span.ramp = c.adaptive_span.ramp;
  block.span.init = c.adaptive_span.init;
  block.span.lambda = c.adaptive_span.lambda;
  block.context_pool = cp.enabled && cp.placement == "attn_input";
  block.pool = context_pool_options(cp);
  block.pool_kv_only = cp.pooled == "kv";
  blocks = register_module("blocks", std::make_shared<nn::Sequential>());
  for (int64_t i = 0; i < c.n_layers; ++i) blocks->push_back(std::make_shared<nn::TransformerBlock>(block, dtype));
  if (cp.enabled && cp.placement == "between") {
    // After every block whose output feeds another attention block (the paper's figure).
    pools = register_module("pools", std::make_shared<nn::Sequential>());
    for (int64_t i = 0; i + 1 < c.n_layers; ++i)
      pools->push_back(std::make_shared<nn::ContextPool1d>(c.d_model, context_pool_options(cp), dtype));
  }
  ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(c.d_model, 1e-5, true, dtype));
  head = register_module("head", std::make_shared<nn::Linear>(c.d_model, c.vocab_size, true, dtype));

  // GPT-2 style: every matrix and embedding N(0, init_std), biases zero, LayerNorm (1, 0). The
  // ContextPool predictors' convolutions too: their outputs start near 0, so every token starts
  // with w = 1/2 and a support halfway between s_min and s_max. Adaptive spans keep their init.
  init_transformer_weights(*this, c.init_std);
}

Tensor TransformerLM::forward(const Tensor& idx) {
  CTXPOOL_CHECK(idx.defined() && idx.dim() == 2 && idx.dtype() == kInt64, "TransformerLM: expected int64 token ids "
                "[B, T], got ", idx.defined() ? shape_str(idx.sizes()) : "undefined");
  const int64_t t = idx.sizes()[1];
  CTXPOOL_CHECK(t >= 1 && t <= config_.context, "TransformerLM: sequence length ", t, " exceeds the context ",
                config_.context);
  Tensor x = ops::add(tok_emb->forward(idx), pos_emb.narrow(0, 0, t));
  for (size_t l = 0; l < blocks->size(); ++l) {
    x = (*blocks)[l]->forward(x);
    if (pools && l < pools->size()) x = (*pools)[l]->forward(x);
  }
  return head->forward(ln_f->forward(x));
}

std::shared_ptr<nn::TransformerBlock> TransformerLM::block(size_t l) const {
  return std::static_pointer_cast<nn::TransformerBlock>((*blocks)[l]);
}

std::vector<std::shared_ptr<nn::ContextPool1d>> TransformerLM::context_pools() const {
  std::vector<std::shared_ptr<nn::ContextPool1d>> out;
  for (size_t l = 0; l < blocks->size(); ++l) {
    const auto blk = block(l);
    if (blk->pool) out.push_back(blk->pool);
    if (pools && l < pools->size()) out.push_back(std::static_pointer_cast<nn::ContextPool1d>((*pools)[l]));
  }
  return out;
}

Tensor TransformerLM::auxiliary_loss() const {
  Tensor total;
  auto add = [&total](const Tensor& t) {
    if (t.defined()) total = total.defined() ? ops::add(total, t) : t;
  };
  for (const auto& pool : context_pools()) add(pool->auxiliary_loss());
  for (size_t l = 0; l < blocks->size(); ++l) {
    const auto blk = block(l);
    if (blk->attn->span && blk->attn->span->options.lambda > 0) add(blk->attn->span->penalty());
  }
  return total;
}

void TransformerLM::after_optimizer_step() {
  for (size_t l = 0; l < blocks->size(); ++l) {
    const auto blk = block(l);
    if (blk->attn->span) blk->attn->span->clamp_();
  }
}

std::vector<std::pair<std::string, double>> TransformerLM::diagnostics() const {
  std::vector<std::pair<std::string, double>> out;
  const auto pools_in_order = context_pools();
  for (size_t l = 0; l < pools_in_order.size(); ++l) {
    out.emplace_back("cp_support/" + std::to_string(l), pools_in_order[l]->mean_support());
    out.emplace_back("cp_weight/" + std::to_string(l), pools_in_order[l]->mean_weight());
  }
  for (size_t l = 0; l < blocks->size(); ++l) {
    const auto blk = block(l);
    if (blk->attn->span) out.emplace_back("span/" + std::to_string(l), blk->attn->span->mean_span());
  }
  return out;
}

// Counted: every matrix product as it is executed (2 FLOPs per multiply-add) at sequence length
// T = context, averaged over the T query positions:
//   per block   projections 8 d^2 (q, k, v and output; split or fused alike), MLP 4 d d_mlp,
//               attention 4 d keys(i), the scores and weighted values over the keys computed for
//               query i: all T for full and adaptive span (both form the dense T x T scores and
//               mask the future afterwards, so half of that work is discarded), min(i + 1, W) for
//               local (only the band is computed);
//   ContextPool predictor 2 k (d h + 2 h) (none in uniform mode), pooling 2 d (window tokens
//               inside the sequence);
//   head        2 d vocab.
// Not counted: embeddings (lookups), LayerNorm, softmax, GELU, biases, residual adds and the
// ContextPool coefficients (O(K) per token): all linear in d or smaller.
double TransformerLM::flops_per_token() const {
  const ModelConfig& c = config_;
  const double d = static_cast<double>(c.d_model), t = static_cast<double>(c.context);
  double keys = 0, pooled = 0;  // summed over query positions
  const ContextPoolConfig& cp = c.context_pool;
  for (int64_t i = 0; i < c.context; ++i) {
    keys += static_cast<double>(c.attention == "local" ? std::min(i + 1, c.local_window) : c.context);
    pooled += static_cast<double>(std::min(i, cp.window) + 1);  // causal window i - K .. i
  }
  const double per_block = 8 * d * d + 4 * d * static_cast<double>(c.d_mlp) + 4 * d * keys / t;
  double total = static_cast<double>(c.n_layers) * per_block + 2 * d * static_cast<double>(c.vocab_size);
  const auto pools_in_order = context_pools();
  for (const auto& pool : pools_in_order) {
    if (pool->conv1) {
      const double h = static_cast<double>(pool->conv1->out_channels), k = static_cast<double>(pool->conv1->kernel_size);
      total += 2 * k * (d * h + 2 * h);
    }
    total += 2 * d * pooled / t;
  }
  return total;
}

}  // namespace ctxpool::models
