#include "bench.h"

namespace flagos::bench {

void cases_norm(std::vector<Case>&, const Options&) {}

}  // namespace flagos::bench
