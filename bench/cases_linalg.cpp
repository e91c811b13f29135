#include "bench.h"

namespace flagos::bench {

void cases_linalg(std::vector<Case>&, const Options&) {}

}  // namespace flagos::bench
