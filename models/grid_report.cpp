// The results table of a grid: markdown for people, JSON for scripts (plots, README numbers).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/file_io.h"
#include "models/grid.h"

namespace ctxpool::models {

namespace {

struct Spread {
  double mean = NAN, std = NAN;  // std: sample standard deviation (NaN for one value)
};

Spread spread(const std::vector<double>& v) {
  Spread s;
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s;
}

std::string fmt(const char* f, double v) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string mean_pm(const Spread& s) {
  return std::isnan(s.std) ? fmt("%.4f", s.mean) : fmt("%.4f", s.mean) + " ± " + fmt("%.4f", s.std);
}

// One config's finished runs.
struct Row {
  const GridEntry* entry = nullptr;
  RunConfig config;
  std::vector<const RunResult*> runs;
  Spread val, test, ms, tok;
};

std::vector<double> collect(const Row& row, double RunResult::*field) {
  std::vector<double> v;
  for (const RunResult* r : row.runs) v.push_back(r->*field);
  return v;
}

// Transformer blocks, or a ConvNet's convolution layers.
int64_t layers(const ModelConfig& m) {
  if (m.type == "convnet") return static_cast<int64_t>(m.image.channels.size()) * m.image.convs_per_stage;
  return m.n_layers;
}

}  // namespace

void write_grid_results(const Grid& grid, const std::vector<RunResult>& results) {
  std::vector<Row> rows;
  for (size_t c = 0; c < grid.configs.size(); ++c) {
    Row row;
    row.entry = &grid.configs[c];
    row.config = grid.run_config(c, grid.seeds[0]);
    for (const RunResult& r : results)
      if (r.config == row.entry->name) row.runs.push_back(&r);
    row.val = spread(collect(row, &RunResult::best_val));
    row.test = spread(collect(row, &RunResult::test));
    row.ms = spread(collect(row, &RunResult::ms_per_step));
    row.tok = spread(collect(row, &RunResult::items_per_s));
    rows.push_back(std::move(row));
  }
  auto find = [&](const std::string& name) -> const Row* {
    for (const Row& r : rows)
      if (r.entry->name == name && !r.runs.empty()) return &r;
    return nullptr;
  };
  const Row* deep = grid.reference_deep.empty() ? nullptr : find(grid.reference_deep);
  const Row* shallow = grid.reference_shallow.empty() ? nullptr : find(grid.reference_shallow);

  // A conclusion written by hand between these markers survives every rewrite of the table.
  const std::string md_path = grid.results_dir + "/" + grid.name + ".md";
  const std::string open_mark = "<!-- conclusion -->", close_mark = "<!-- /conclusion -->";
  std::string conclusion = open_mark + "\n*(No conclusion written yet.)*\n" + close_mark;
  if (file_exists(md_path)) {
    const std::string old = read_file(md_path);
    const size_t a = old.find(open_mark), b = old.find(close_mark);
    if (a != std::string::npos && b != std::string::npos && b > a) conclusion = old.substr(a, b + close_mark.size() - a);
  }

  const RunConfig base = RunConfig::from_json(grid.base);
  const bool images = base.model.is_image_model();
  // The metric's words: bits per character per token, or accuracy per image.
  const std::string metric = images ? "accuracy" : "bpc", item = images ? "image" : "token";
  const std::string item_col = images ? "img/s" : "tok/s", flops_col = images ? "MFLOPs/image" : "MFLOPs/token";
  std::ostringstream md;
  md << "# Results: grid `" << grid.name << "`\n\n" << conclusion << "\n\n";
  if (!grid.comment.empty()) md << grid.comment << "\n\n";
  md << "**Budget, the same for every row unless its overrides say otherwise:** " << base.train.steps
     << " steps of batch " << base.train.batch_size;
  if (images) {
    md << " images of `" << base.data.dataset << "` (" << base.data.validation_size
       << " training images held out for validation; crop padding " << base.data.crop_padding << ", flip "
       << (base.data.horizontal_flip ? "on" : "off") << ")";
  } else {
    md << " x context " << base.model.context << " on `" << base.data.path << "` (split " << base.data.train_fraction
       << " / " << base.data.validation_fraction << " / rest)";
  }
  md << "; " << (base.optim.type == "sgd" ? "SGD" : "AdamW") << " lr " << base.optim.lr << ", "
     << base.schedule.warmup_steps << " warm-up steps, cosine to " << base.schedule.min_lr_ratio << " x lr. Seeds:";
  for (uint64_t s : grid.seeds) md << " " << s;
  if (std::any_of(grid.configs.begin(), grid.configs.end(), [](const GridEntry& e) { return !e.seeds.empty(); }))
    md << " (a row with its own seeds in the grid file runs those: see *seeds done*)";
  md << ". Validation " << metric << " every " << base.train.eval_interval << " steps on ";
  if (images) md << "the held-out images";
  else md << (base.train.max_eval_windows > 0 ? "the first " + std::to_string(base.train.max_eval_windows) : std::string("all"))
          << " validation windows";
  md << "; the best is reported, and the test " << metric << " of that checkpoint, measured once on the whole "
        "test split. Mean ± sample standard deviation over seeds. ms/step is each run's median, averaged over seeds "
        "(the machine is shared: compare within one table). Made by `ctxpool-grid`; runs in `"
     << grid.runs_dir << "`.\n\n";
  if (deep && shallow)
    md << "*gap recovered*: (shallow - row) / (shallow - deep) of the mean best validation " << metric
       << ", with shallow = `" << shallow->entry->name << "` and deep = `" << deep->entry->name << "`. *vs deep*: "
       << "the row's mean minus the deep row's; **bold** when it exceeds twice the larger of the two seed spreads.\n\n";
  md << "| config | layers | params | " << flops_col << " | best val " << metric << " | test " << metric << " |";
  if (deep && shallow) md << " vs deep | gap recovered |";
  md << " ms/step | " << item_col << " | seeds done |\n|---|---:|---:|---:|---:|---:|";
  if (deep && shallow) md << "---:|---:|";
  md << "---:|---:|---:|\n";

  nlohmann::json out_rows = nlohmann::json::array();
  for (size_t c = 0; c < rows.size(); ++c) {
    const Row& row = rows[c];
    const bool any = !row.runs.empty();
    md << "| " << row.entry->name << " | " << layers(row.config.model) << " | "
       << (any ? std::to_string(row.runs[0]->parameters) : "-") << " | "
       << (any ? fmt("%.3f", row.runs[0]->flops / 1e6) : "-") << " | " << mean_pm(row.val) << " | "
       << mean_pm(row.test) << " |";
    double gap = NAN, vs_deep = NAN;
    if (deep && shallow) {
      vs_deep = row.val.mean - deep->val.mean;
      gap = (shallow->val.mean - row.val.mean) / (shallow->val.mean - deep->val.mean);
      const double noise = 2 * std::max(std::isnan(row.val.std) ? 0.0 : row.val.std,
                                        std::isnan(deep->val.std) ? 0.0 : deep->val.std);
      const bool clear = !std::isnan(vs_deep) && noise > 0 && std::abs(vs_deep) > noise;
      md << " " << (clear ? "**" : "") << fmt("%+.4f", vs_deep) << (clear ? "**" : "") << " | "
         << fmt("%.0f%%", 100 * gap) << " |";
    }
    md << " " << fmt("%.1f", row.ms.mean) << " | " << fmt("%.0f", row.tok.mean) << " | " << row.runs.size() << "/"
       << grid.seeds_of(c).size() << " |\n";

    nlohmann::json per_seed = nlohmann::json::array();
    for (const RunResult* r : row.runs) per_seed.push_back(r->to_json());
    auto stat = [](const Spread& s) {
      return nlohmann::json{{"mean", std::isnan(s.mean) ? nlohmann::json() : nlohmann::json(s.mean)},
                            {"std", std::isnan(s.std) ? nlohmann::json() : nlohmann::json(s.std)}};
    };
    out_rows.push_back({{"name", row.entry->name},
                        {"n_layers", layers(row.config.model)},
                        {"overrides", row.entry->overrides},
                        {"seeds", grid.seeds_of(c)},
                        {"parameters", any ? nlohmann::json(row.runs[0]->parameters) : nlohmann::json()},
                        {images ? "flops_per_image" : "flops_per_token",
                         any ? nlohmann::json(row.runs[0]->flops) : nlohmann::json()},
                        {images ? "best_val_acc" : "best_val_bpc", stat(row.val)},
                        {images ? "test_acc" : "test_bpc", stat(row.test)},
                        {"ms_per_step", stat(row.ms)},
                        {images ? "images_per_s" : "tokens_per_s", stat(row.tok)},
                        {"gap_recovered", std::isnan(gap) ? nlohmann::json() : nlohmann::json(gap)},
                        {"runs", per_seed}});
  }
  const nlohmann::json out = {{"grid", grid.name},         {"comment", grid.comment},
                              {"base", grid.base},         {"seeds", grid.seeds},
                              {"reference", {{"deep", grid.reference_deep}, {"shallow", grid.reference_shallow}}},
                              {"runs_dir", grid.runs_dir}, {"configs", out_rows}};
  make_directories(grid.results_dir);
  write_file_atomic(md_path, md.str());
  write_file_atomic(grid.results_dir + "/" + grid.name + ".json", out.dump(2) + "\n");
}

}  // namespace ctxpool::models
