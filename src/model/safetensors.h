// safetensors reader: u64 header length, JSON header {name: {dtype, shape, data_offsets}}, data.
// Tensors are views into the memory-mapped file (copied only when the data is misaligned for its
// dtype). Sharded checkpoints are read through model.safetensors.index.json. Everything is
// validated at open; malformed input throws InvalidArgument naming the file and the tensor.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flagos/tensor.h"
#include "model/mapped_file.h"

namespace flagos::model::safetensors {

struct TensorInfo {
  std::string name;
  Shape shape;
  DType dtype = DType::f32;
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
};

class File {
 public:
  static File open(const std::string& path);
  static File parse(std::shared_ptr<const MappedFile> bytes);

  const std::string& path() const { return bytes_->path(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;
  // The tensor: a view into the mapping, or a copy when its data is not aligned to the dtype's size.
  Tensor tensor(const TensorInfo& info) const;

 private:
  std::shared_ptr<const MappedFile> bytes_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
};

// The shard files of a checkpoint: `dir`/model.safetensors.index.json's weight_map (file names
// must be plain names inside `dir`), in first-use order. Each tensor name must map to one file.
struct ShardIndex {
  std::vector<std::string> files;             // full paths
  std::map<std::string, std::string> weight_map;  // tensor name -> full path
};
ShardIndex read_shard_index(const std::string& index_path);

}  // namespace flagos::model::safetensors
