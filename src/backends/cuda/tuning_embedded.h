#pragma once
// The launch tables compiled into the binary: tables/sm_XY.txt as strings, in the source file that
// src/backends/cuda/CMakeLists.txt generates (tuning_tables.cpp in the build directory).

namespace flagos::cuda::tuning::embedded {

struct Item {
  const char* arch;  // "sm_90"
  const char* path;  // the table's path in the source tree, for error messages
  const char* text;  // the table itself
};
extern const Item kTables[];
extern const int kCount;

}  // namespace flagos::cuda::tuning::embedded
