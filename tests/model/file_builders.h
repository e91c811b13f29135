// Test helpers that write GGUF and safetensors bytes field by field, so tests can make valid
// files and break any one field (counts, lengths, types, dims, offsets) on purpose.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace flagos::model::testing {

class Bytes {
 public:
  template <typename T>
  Bytes& put(T v) {
    const size_t n = buf_.size();
    buf_.resize(n + sizeof(T));
    std::memcpy(buf_.data() + n, &v, sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    buf_.insert(buf_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& raw(const std::vector<uint8_t>& b) {
    buf_.insert(buf_.end(), b.begin(), b.end());
    return *this;
  }
  std::vector<uint8_t>& vec() { return buf_; }
  size_t size() const { return buf_.size(); }

 private:
  std::vector<uint8_t> buf_;
};

// GGUF value type ids (spec).
enum : uint32_t { kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64 };

struct GgufBuilder {
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  std::optional<uint64_t> n_tensors, n_kv;  // override the real counts
  uint32_t alignment = 32;                  // used for layout; set general.alignment yourself to change it
  std::vector<std::vector<uint8_t>> kvs;
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type = 0;
    std::vector<uint8_t> data;
    std::optional<uint64_t> offset;  // relative; default: packed, aligned
  };
  std::vector<Tensor> tensors;

  // A whole metadata entry: key, type, then the encoded value bytes.
  GgufBuilder& kv(const std::string& key, uint32_t type, const std::vector<uint8_t>& value) {
    Bytes b;
    b.str(key).put<uint32_t>(type).raw(value);
    kvs.push_back(b.vec());
    return *this;
  }
  template <typename T>
  static std::vector<uint8_t> enc(T v) {
    Bytes b;
    b.put(v);
    return b.vec();
  }
  static std::vector<uint8_t> enc_str(const std::string& s) {
    Bytes b;
    b.str(s);
    return b.vec();
  }
  GgufBuilder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, size_t nbytes,
                      std::optional<uint64_t> offset = {}) {
    tensors.push_back({name, std::move(ne), type, std::vector<uint8_t>(nbytes, 0), offset});
    return *this;
  }

  std::vector<uint8_t> build() const {
    Bytes b;
    b.put(magic).put(version).put<uint64_t>(n_tensors.value_or(tensors.size())).put<uint64_t>(n_kv.value_or(kvs.size()));
    for (const auto& e : kvs) b.raw(e);
    std::vector<uint64_t> offsets;
    uint64_t at = 0;
    for (const auto& t : tensors) {
      offsets.push_back(t.offset.value_or(at));
      at = (offsets.back() + t.data.size() + alignment - 1) / alignment * alignment;
    }
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      b.str(t.name).put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
      for (uint64_t d : t.ne) b.put(d);
      b.put(t.type).put(offsets[i]);
    }
    while (b.size() % alignment) b.put<uint8_t>(0);
    const size_t data_start = b.size();
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].offset || tensors[i].data.empty()) continue;  // overridden offsets point wherever the test wants
      auto& v = b.vec();
      if (v.size() < data_start + offsets[i] + tensors[i].data.size()) v.resize(data_start + offsets[i] + tensors[i].data.size());
      std::memcpy(v.data() + data_start + offsets[i], tensors[i].data.data(), tensors[i].data.size());
    }
    return std::move(b.vec());
  }
};

// safetensors: 8-byte header length, the header text as given, then `data`.
inline std::vector<uint8_t> safetensors_bytes(const std::string& header, const std::vector<uint8_t>& data,
                                              std::optional<uint64_t> header_len = {}) {
  Bytes b;
  b.put<uint64_t>(header_len.value_or(header.size()));
  b.vec().insert(b.vec().end(), header.begin(), header.end());
  b.raw(data);
  return std::move(b.vec());
}

}  // namespace flagos::model::testing
