// safetensors reader. Header: 8-byte little-endian length N, then N bytes of JSON:
//   {"__metadata__": {...}, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
// with offsets relative to the first byte after the header.
#include "model/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "flagos/error.h"
#include "model/json_brief.h"

namespace flagos::model::safetensors {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // 100 MB, as the reference implementation

bool dtype_from_name(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> kNames[] = {
      {"F32", DType::f32}, {"F16", DType::f16}, {"BF16", DType::bf16}, {"F64", DType::f64}, {"I8", DType::i8},
      {"U8", DType::u8},   {"I16", DType::i16}, {"I32", DType::i32},   {"I64", DType::i64}, {"BOOL", DType::boolean},
  };
  for (const auto& [n, d] : kNames)
    if (s == n) {
      *out = d;
      return true;
    }
  return false;
}

}  // namespace

File File::open(const std::string& path) { return parse(MappedFile::open(path)); }

File File::parse(std::shared_ptr<const MappedFile> bytes) {
  File f;
  f.bytes_ = bytes;
  const std::string& path = bytes->path();
  const uint64_t size = bytes->size();
  if (size < 8) fail<InvalidArgument>(path, ": header length: file has ", size, " bytes, needs at least 8");
  uint64_t n = 0;
  std::memcpy(&n, bytes->data(), 8);
  if (n > kMaxHeaderBytes)
    fail<InvalidArgument>(path, ": header length: ", n, " bytes exceeds the limit of ", kMaxHeaderBytes);
  if (n > size - 8)
    fail<InvalidArgument>(path, ": header length: ", n, " bytes runs past the end of the file (size ", size, ")");
  const uint64_t data_start = 8 + n;
  const uint64_t data_size = size - data_start;

  nlohmann::json header;
  std::set<std::string> top_keys;
  std::string duplicate;  // JSON parsers keep one of two equal keys; safetensors forbids them
  try {
    header = nlohmann::json::parse(bytes->data() + 8, bytes->data() + 8 + n,
                                   [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
                                     if (depth == 1 && event == nlohmann::json::parse_event_t::key &&
                                         !top_keys.insert(parsed.get<std::string>()).second && duplicate.empty())
                                       duplicate = parsed.get<std::string>();
                                     return true;
                                   });
  } catch (const nlohmann::json::exception& e) {
    fail<InvalidArgument>(path, ": header: invalid JSON: ", e.what());
  }
  if (!duplicate.empty()) fail<InvalidArgument>(path, ": tensor '", duplicate, "': duplicate name in the header");
  if (!header.is_object()) fail<InvalidArgument>(path, ": header: expected a JSON object, found ", header.type_name());

  try {
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") continue;
      const std::string field = path + ": tensor '" + name + "'";
      if (!entry.is_object()) fail<InvalidArgument>(field, ": expected an object, found ", entry.type_name());
      const auto dt = entry.find("dtype");
      const auto sh = entry.find("shape");
      const auto off = entry.find("data_offsets");
      if (dt == entry.end() || sh == entry.end() || off == entry.end())
        fail<InvalidArgument>(field, ": needs dtype, shape and data_offsets");
      if (!dt->is_string()) fail<InvalidArgument>(field, ": dtype: expected a string");
      TensorInfo ti;
      ti.name = name;
      if (!dtype_from_name(dt->get<std::string>(), &ti.dtype))
        fail<InvalidArgument>(field, ": dtype '", dt->get<std::string>(),
                              "' is not supported (F32, F16, BF16, F64, I8, U8, I16, I32, I64, BOOL)");
      if (!sh->is_array()) fail<InvalidArgument>(field, ": shape: expected an array");
      if (sh->size() > static_cast<size_t>(kMaxDims))
        fail<InvalidArgument>(field, ": shape: ", sh->size(), " dims exceeds the maximum of ", kMaxDims);
      uint64_t numel = 1;
      for (const auto& d : *sh) {
        if (!d.is_number_unsigned())
          fail<InvalidArgument>(field, ": shape: ", json_brief(d), " is not a non-negative integer");
        const uint64_t v = d.get<uint64_t>();
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
            (v != 0 && numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / v))
          fail<InvalidArgument>(field, ": shape: ", sh->dump(), " element count overflows");
        numel *= v;
        ti.shape.push_back(static_cast<int64_t>(v));
      }
      if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
        fail<InvalidArgument>(field, ": data_offsets: expected [begin, end] non-negative integers, found ", json_brief(*off));
      const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
      if (begin > end) fail<InvalidArgument>(field, ": data_offsets [", begin, ", ", end, "]: begin > end");
      if (end > data_size)
        fail<InvalidArgument>(field, ": data_offsets [", begin, ", ", end, "] run past the end of the data (",
                              data_size, " bytes after the ", n, "-byte header)");
      const uint64_t item = element_size(ti.dtype);
      if (numel > std::numeric_limits<uint64_t>::max() / item || end - begin != numel * item)
        fail<InvalidArgument>(field, ": data_offsets [", begin, ", ", end, "] hold ", end - begin, " bytes but ",
                              dt->get<std::string>(), sh->dump(), " needs ", numel, " x ", item);
      ti.offset = data_start + begin;
      ti.nbytes = end - begin;
      f.index_.emplace(ti.name, f.tensors_.size());  // JSON object keys are unique after parsing
      f.tensors_.push_back(std::move(ti));
    }
  } catch (const nlohmann::json::exception& e) {
    fail<InvalidArgument>(path, ": header: ", e.what());
  }
  return f;
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Tensor File::tensor(const TensorInfo& info) const {
  const uint8_t* p = bytes_->data() + info.offset;
  if (reinterpret_cast<uintptr_t>(p) % element_size(info.dtype) != 0 || info.nbytes == 0) {
    Tensor t = Tensor::empty(info.shape, info.dtype);
    if (info.nbytes) std::memcpy(t.data(), p, info.nbytes);
    return t;
  }
  return Tensor::from_blob(const_cast<uint8_t*>(p), info.shape, info.dtype, Device::cpu(),
                           std::const_pointer_cast<MappedFile>(bytes_));
}

ShardIndex read_shard_index(const std::string& index_path) {
  std::ifstream in(index_path);
  if (!in) fail<InvalidArgument>(index_path, ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail<InvalidArgument>(index_path, ": invalid JSON: ", e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail<InvalidArgument>(index_path, ": weight_map: expected an object");
  const std::filesystem::path dir = std::filesystem::path(index_path).parent_path();
  ShardIndex idx;
  std::set<std::string> seen;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) fail<InvalidArgument>(index_path, ": weight_map['", name, "']: expected a file name");
    const std::string fn = file.get<std::string>();
    if (fn.empty() || fn.find('/') != std::string::npos || fn.find('\\') != std::string::npos || fn == "." || fn == "..")
      fail<InvalidArgument>(index_path, ": weight_map['", name, "']: '", fn, "' is not a plain file name");
    const std::string full = (dir / fn).string();
    if (seen.insert(full).second) idx.files.push_back(full);
    idx.weight_map.emplace(name, full);
  }
  if (idx.files.empty()) fail<InvalidArgument>(index_path, ": weight_map is empty");
  return idx;
}

}  // namespace flagos::model::safetensors
