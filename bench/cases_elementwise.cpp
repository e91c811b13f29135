#include "bench.h"

namespace flagos::bench {

void cases_elementwise(std::vector<Case>&, const Options&) {}

}  // namespace flagos::bench
