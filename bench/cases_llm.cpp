#include "bench.h"

namespace flagos::bench {

void cases_llm(std::vector<Case>&, const Options&) {}

}  // namespace flagos::bench
