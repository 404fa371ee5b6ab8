// ctxpool-grid: train a grid of configs x seeds (examples/grids/*.json) one run after another, resume
// an interrupted grid, and write the results table to docs/results/<grid>.md and .json.
//
//   ctxpool-grid --grid examples/grids/contextpool_lm.json
//   ctxpool-grid --grid examples/grids/contextpool_lm.json --only "plain"     # a subset of the configs
//   ctxpool-grid --grid examples/grids/contextpool_lm.json --table-only       # rewrite the table, train nothing
//
// Start it twice (CTXPOOL_NUM_THREADS=1 each) to use two cores: each process skips the run the
// other one is training (a lock file beside each run directory).
#include <cstdio>
#include <string>

#include "core/error.h"
#include "models/grid.h"
#include "models/stop_signal.h"

using namespace ctxpool;

int main(int argc, char** argv) {
  try {
    std::string grid_path, only, runs_dir, results_dir;
    bool table_only = false;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        CTXPOOL_CHECK(i + 1 < argc, "ctxpool-grid: ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--help" || a == "-h") {
        std::puts("usage: ctxpool-grid --grid FILE [--only TEXT] [--runs-dir DIR] [--results-dir DIR] [--table-only]");
        return 0;
      } else if (a == "--grid") grid_path = value();
      else if (a == "--only") only = value();
      else if (a == "--runs-dir") runs_dir = value();
      else if (a == "--results-dir") results_dir = value();
      else if (a == "--table-only") table_only = true;
      else detail::fail("ctxpool-grid: unknown argument '", a, "' (see --help)");
    }
    CTXPOOL_CHECK(!grid_path.empty(), "ctxpool-grid: give --grid FILE (see examples/grids/)");
    models::Grid grid = models::Grid::from_file(grid_path);
    if (!runs_dir.empty()) grid.runs_dir = runs_dir;
    if (!results_dir.empty()) grid.results_dir = results_dir;
    models::GridOptions options;
    options.only = only;
    options.table_only = table_only;
    const auto results = models::run_grid(grid, options);
    std::printf("\n[grid %s] %zu runs finished; table: %s/%s.md\n", grid.name.c_str(), results.size(),
                grid.results_dir.c_str(), grid.name.c_str());
    if (models::stop_requested()) {
      std::printf("[grid %s] stopped by a signal; run the same command again to resume\n", grid.name.c_str());
      return 130;
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // anything the library did not turn into an Error
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
