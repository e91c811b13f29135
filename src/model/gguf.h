// GGUF (versions 2 and 3) reader: header, metadata of every value type, tensor infos, and the
// tensors themselves as views into the memory-mapped file. Everything is validated at open():
// counts against the bytes left, string and array lengths, nesting depth, tensor ranks, dims,
// sizes, types, names and data ranges. Malformed input throws InvalidArgument
// "<file>: <field>: <what>"; a tensor type GGUF defines but flagos cannot hold throws NotSupported.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flagos/tensor.h"
#include "model/mapped_file.h"

namespace flagos::model::gguf {

enum class ValueType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12,
};
std::string_view value_type_name(ValueType t);

// One metadata value. Scalars are decoded at open; arrays stay in the mapping and are decoded
// on request (a vocabulary of 256K strings costs nothing until read).
class Value {
 public:
  ValueType type() const { return type_; }
  bool is_integer() const;  // u8..i64 (not bool)
  bool is_number() const;   // integer or float
  // Conversions; throw InvalidArgument "<file>: <key>: ..." on a type mismatch or an out-of-range value.
  int64_t as_int() const;
  double as_double() const;
  bool as_bool() const;
  const std::string& as_string() const;
  // Arrays.
  ValueType elem_type() const;  // throws unless an array
  uint64_t array_size() const;  // throws unless an array
  std::vector<std::string> as_strings() const;
  std::vector<int64_t> as_ints() const;
  std::vector<double> as_doubles() const;
  std::vector<bool> as_bools() const;
  // Any element type, including nested arrays; one Value per element, so prefer the typed
  // accessors above for large arrays.
  std::vector<Value> elements() const;
  std::string describe() const;         // "u32 7", "string \"llama\"", "array<string>[32000]"

 private:
  friend class Parser;
  friend class ArrayReader;
  [[noreturn]] void mismatch(const char* wanted) const;
  ValueType type_ = ValueType::u8;
  std::shared_ptr<const MappedFile> file_;  // array bytes live there; its path names errors
  std::string key_;                          // for error messages ("tokenizer.ggml.tokens[3]")
  uint64_t u_ = 0;  // unsigned integers and bool
  int64_t i_ = 0;   // signed integers
  double f_ = 0;    // floats
  std::string s_;
  // Arrays: element type, count, and the encoded elements [data_, data_ + nbytes_).
  ValueType elem_ = ValueType::u8;
  uint64_t count_ = 0;
  const uint8_t* data_ = nullptr;
  size_t nbytes_ = 0;
  int depth_ = 0;
};

struct TensorInfo {
  std::string name;
  Shape shape;            // row-major (GGUF ne[] reversed): [ne1, ne0] for a matrix
  uint32_t ggml_type = 0;  // the raw GGML type id
  DType dtype = DType::f32;
  uint64_t offset = 0;  // absolute byte offset of the data in the file
  uint64_t nbytes = 0;
};

class File {
 public:
  static File open(const std::string& path);
  static File parse(std::shared_ptr<const MappedFile> bytes);  // path() = bytes->path()

  const std::string& path() const { return bytes_->path(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section

  const std::map<std::string, Value>& metadata() const { return kv_; }
  const Value* find(const std::string& key) const;
  const Value& get(const std::string& key) const;  // throws InvalidArgument "<file>: missing metadata key '<key>'"

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;
  // A view of the tensor's bytes in the mapping (kept alive by the returned tensor).
  Tensor tensor(const TensorInfo& info) const;

 private:
  std::shared_ptr<const MappedFile> bytes_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, Value> kv_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// GGML type id -> flagos dtype; false for ids flagos has no dtype for.
bool dtype_from_ggml_type(uint32_t ggml_type, DType* out);
// Name of a GGML type id ("Q4_K", "IQ2_XS", ...), or "unknown".
std::string_view ggml_type_name(uint32_t ggml_type);

}  // namespace flagos::model::gguf
