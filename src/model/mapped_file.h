// Read-only bytes of a model file: a private read-only memory mapping of the whole file, or an
// owned in-memory copy (tests, fuzzing). Tensors that view into it hold a shared_ptr to it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace flagos::model {

class MappedFile {
 public:
  // Maps `path` (PROT_READ, MAP_PRIVATE). Throws InvalidArgument naming the file if it cannot be
  // opened, is not a regular file, or cannot be mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  // Wraps a copy of `bytes`; `name` stands in for the file name in error messages.
  static std::shared_ptr<const MappedFile> from_memory(std::string name, std::vector<uint8_t> bytes);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;          // munmap on destruction
  std::vector<uint8_t> owned_;   // from_memory
};

}  // namespace flagos::model
