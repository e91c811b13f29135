#include "bench.h"

namespace flagos::bench {

void cases_reduce(std::vector<Case>&, const Options&) {}

}  // namespace flagos::bench
