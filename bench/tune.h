// `flagos tune ops`: times every candidate launch config of a backend's tunable kernel families
// (flagos/tuning.h) on representative LLM shapes, checks each candidate's output against the
// heuristic's, and writes the launch table of the machine at hand (and a JSON report).
#pragma once
#include <string>
#include <vector>

#include "flagos/device.h"

namespace flagos::bench {

struct TuneOptions {
  Device device;
  std::vector<std::string> families;  // empty: all of the backend's
  std::string out;                    // table file to write ("" : print only)
  std::string json;                   // JSON report ("" : none)
  bool quick = false;                 // a few shapes per family (smoke test)
};

// Returns 0, or 1 when a candidate failed to run or disagreed with the heuristic's output
// (such a candidate is never chosen).
int run_tune(const TuneOptions& o);

}  // namespace flagos::bench
