#include "bench.h"

namespace flagos::bench {

void cases_quant(std::vector<Case>&, const Options&) {}

}  // namespace flagos::bench
