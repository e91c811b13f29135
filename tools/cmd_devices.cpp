#include <cstdio>

#include "cli.h"
#include "flagos/error.h"
#include "flagos/backend.h"

namespace flagos::cli {

int cmd_devices(Args& a) {
  a.finish("devices");
  std::printf("%-8s %-6s %-44s %10s %10s %6s  %s\n", "backend", "device", "name", "memory", "free", "units",
              "capabilities");
  for (int b = 0; b < backend_count(); ++b) {
    Backend& be = backend(static_cast<uint16_t>(b));
    const int n = be.device_count();
    if (n == 0) std::printf("%-8.*s %-6s (no devices found)\n", static_cast<int>(be.name().size()), be.name().data(), "-");
    for (int i = 0; i < n; ++i) {
      const DeviceProps p = be.device_props(i);
      std::printf("%-8.*s %-6d %-44.44s %8.1fGB %8.1fGB %6d  %s%s%s\n", static_cast<int>(be.name().size()),
                  be.name().data(), i, p.name.c_str(), static_cast<double>(p.total_memory) / 1e9,
                  static_cast<double>(p.free_memory) / 1e9, p.compute_units, p.capabilities.c_str(),
                  p.async_streams ? " async" : "", p.graphs ? " graphs" : "");
    }
  }
  return 0;
}

}  // namespace flagos::cli
