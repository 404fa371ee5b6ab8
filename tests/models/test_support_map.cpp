// What ctxpool-supports renders (models/support_map.h): the support sizes of every ContextPool layer
// for every character of a passage, window by window, and the HTML page that shows them.
#include <algorithm>

#include "helpers/test_utils.h"
#include "models/support_map.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

models::ModelConfig tiny_cp_model() {
  models::ModelConfig c;
  c.vocab_size = 256;  // byte ids, so any text is a valid passage
  c.n_layers = 2;
  c.d_model = 16;
  c.n_heads = 2;
  c.d_mlp = 32;
  c.context = 8;
  c.init_std = 0.5;  // supports that visibly differ from character to character
  c.context_pool.enabled = true;
  c.context_pool.window = 4;
  return c;
}

std::vector<int64_t> bytes_of(const std::string& text) {
  std::vector<int64_t> ids;
  for (char c : text) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

}  // namespace

// Every character gets one s per layer, in [s_min, s_max], and it is the s the layer chose for that
// character when its window (of the model's context) ran alone: 20 characters are 3 windows.
TEST(SupportMap, OneSupportPerCharacterAndLayerWindowByWindow) {
  manual_seed(3);
  models::TransformerLM model(tiny_cp_model());
  const std::string text = "the cat sees a <dog>";  // 20 characters
  const models::SupportMap map = models::measure_supports(model, bytes_of(text), text);
  EXPECT_TRUE(model.is_training());  // the model's mode is restored
  EXPECT_EQ(map.text, text);
  EXPECT_EQ(map.window, 8);
  EXPECT_DOUBLE_EQ(map.s_min, 0.5);
  EXPECT_DOUBLE_EQ(map.s_max, 2.0);  // the default, window / 2
  ASSERT_EQ(map.layers.size(), 2u);
  for (const auto& layer : map.layers) {
    ASSERT_EQ(layer.size(), text.size());
    for (double s : layer) {
      EXPECT_GE(s, map.s_min);
      EXPECT_LE(s, map.s_max);
    }
    EXPECT_NE(*std::min_element(layer.begin(), layer.end()), *std::max_element(layer.begin(), layer.end()));
  }
  // The last window (characters 16-19) alone gives the same supports.
  model.eval();
  model.forward(from_vector(bytes_of(text.substr(16)), {1, 4}, TensorOptions(kInt64)));
  const auto pools = model.context_pools();
  for (size_t l = 0; l < pools.size(); ++l) {
    const std::vector<double> alone = pools[l]->last_support().to(kFloat64).to_vector<double>();
    ASSERT_EQ(alone.size(), 4u);
    for (size_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(map.layers[l][16 + i], alone[i]) << "layer " << l << " char " << i;
  }
  const nlohmann::json j = map.to_json();
  EXPECT_EQ(j.at("text").size(), text.size());
  EXPECT_EQ(j.at("layers").size(), 2u);
}

// The page shows each character once per layer with its s on hover; HTML's special characters are
// escaped; a multi-byte UTF-8 character is one span with each byte's s; a malformed byte stands alone.
TEST(SupportMap, HtmlEscapesAndKeepsUtf8CharactersWhole) {
  models::SupportMap map;
  map.text = "a<&\xC3\xA9\xFF\n";  // a < & e-acute (2 bytes) a stray 0xFF a newline
  map.s_min = 0.5;
  map.s_max = 8;
  map.window = 128;
  map.layers = {{0.5, 1.25, 2, 3, 4, 8, 6}};
  const std::string html = models::render_supports_html(map, "run <A> & co");
  EXPECT_NE(html.find("run &lt;A&gt; &amp; co"), std::string::npos);
  EXPECT_NE(html.find("<h3>ContextPool layer 0</h3>"), std::string::npos);
  EXPECT_EQ(html.find("<h3>ContextPool layer 1</h3>"), std::string::npos);
  EXPECT_NE(html.find("title=\"s = 0.50\">a</span>"), std::string::npos);
  EXPECT_NE(html.find("title=\"s = 1.25\">&lt;</span>"), std::string::npos);
  EXPECT_NE(html.find("title=\"s = 2.00\">&amp;</span>"), std::string::npos);
  EXPECT_NE(html.find("title=\"s = 3.00 / 4.00\">\xC3\xA9</span>"), std::string::npos);
  EXPECT_NE(html.find("title=\"s = 8.00\">\xFF</span>"), std::string::npos);
  EXPECT_NE(html.find("title=\"s = 6.00\">&#8629;<br></span>"), std::string::npos);
  // Colours run from pale blue at s_min to deep red at s_max.
  EXPECT_NE(html.find("background:rgb(200,225,255)\" title=\"s = 0.50\""), std::string::npos);
  EXPECT_NE(html.find("background:rgb(255,60,60)\" title=\"s = 8.00\""), std::string::npos);
}

TEST(SupportMap, ClearErrors) {
  manual_seed(3);
  models::ModelConfig plain = tiny_cp_model();
  plain.context_pool.enabled = false;
  models::TransformerLM no_pool(plain);
  EXPECT_ERROR_WITH(models::measure_supports(no_pool, {1, 2}, "ab"), "measure_supports", "has no ContextPool layer");
  models::TransformerLM model(tiny_cp_model());
  EXPECT_ERROR_WITH(models::measure_supports(model, {1, 2, 3}, "ab"), "3 tokens with a text of 2 bytes");
  models::SupportMap map;
  map.text = "abc";
  map.layers = {{1, 2}};
  EXPECT_ERROR_WITH(models::render_supports_html(map, ""), "layer 0 has 2 support sizes for 3 characters");
}
