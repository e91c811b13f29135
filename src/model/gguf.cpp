// GGUF reader: parses and validates the whole header once; tensors are views into the mapping.
// Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count, metadata
// (string key, u32 type, value), tensor infos (string name, u32 n_dims, u64 ne[n_dims], u32 type,
// u64 offset), padding to the alignment, tensor data. Strings are u64 length + bytes.
#include "model/gguf.h"

#include <cstring>
#include <limits>
#include <sstream>

#include "flagos/error.h"

namespace flagos::model::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr int kMaxArrayDepth = 8;        // nested arrays deeper than this are rejected
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr uint64_t kMaxKeyBytes = 65535;

struct GgmlType {
  uint32_t id;
  const char* name;
  bool has_dtype;
  DType dtype;
};
// Every GGML type id GGUF defines; the ones with a flagos dtype are loaded as that dtype.
constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", true, DType::f32},      {1, "F16", true, DType::f16},      {2, "Q4_0", true, DType::q4_0},
    {3, "Q4_1", true, DType::q4_1},    {6, "Q5_0", true, DType::q5_0},    {7, "Q5_1", true, DType::q5_1},
    {8, "Q8_0", true, DType::q8_0},    {9, "Q8_1", false, DType::f32},    {10, "Q2_K", false, DType::f32},
    {11, "Q3_K", false, DType::f32},   {12, "Q4_K", true, DType::q4_k},   {13, "Q5_K", true, DType::q5_k},
    {14, "Q6_K", true, DType::q6_k},   {15, "Q8_K", false, DType::f32},   {16, "IQ2_XXS", false, DType::f32},
    {17, "IQ2_XS", false, DType::f32}, {18, "IQ3_XXS", false, DType::f32}, {19, "IQ1_S", false, DType::f32},
    {20, "IQ4_NL", false, DType::f32}, {21, "IQ3_S", false, DType::f32},  {22, "IQ2_S", false, DType::f32},
    {23, "IQ4_XS", false, DType::f32}, {24, "I8", true, DType::i8},       {25, "I16", true, DType::i16},
    {26, "I32", true, DType::i32},     {27, "I64", true, DType::i64},     {28, "F64", true, DType::f64},
    {29, "IQ1_M", false, DType::f32},  {30, "BF16", true, DType::bf16},   {34, "TQ1_0", false, DType::f32},
    {35, "TQ2_0", false, DType::f32},  {39, "MXFP4", false, DType::f32},
};

const GgmlType* find_ggml_type(uint32_t id) {
  for (const auto& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

// Fixed byte size of a scalar value type; 0 for string/array.
size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
    case ValueType::u16: case ValueType::i16: return 2;
    case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
    case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
    case ValueType::string: case ValueType::array: return 0;
  }
  return 0;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::f64); }

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::u8: return "u8";
    case ValueType::i8: return "i8";
    case ValueType::u16: return "u16";
    case ValueType::i16: return "i16";
    case ValueType::u32: return "u32";
    case ValueType::i32: return "i32";
    case ValueType::f32: return "f32";
    case ValueType::boolean: return "bool";
    case ValueType::string: return "string";
    case ValueType::array: return "array";
    case ValueType::u64: return "u64";
    case ValueType::i64: return "i64";
    case ValueType::f64: return "f64";
  }
  return "unknown";
}

bool dtype_from_ggml_type(uint32_t ggml_type, DType* out) {
  const GgmlType* t = find_ggml_type(ggml_type);
  if (!t || !t->has_dtype) return false;
  *out = t->dtype;
  return true;
}

std::string_view ggml_type_name(uint32_t ggml_type) {
  const GgmlType* t = find_ggml_type(ggml_type);
  return t ? t->name : "unknown";
}

// ------------------------------------------------------------------------------------------ parsing

// A bounds-checked cursor over the file bytes. Every read names the field it is for.
class Parser {
 public:
  explicit Parser(std::shared_ptr<const MappedFile> f) : file_(std::move(f)), p_(file_->data()), size_(file_->size()) {}

  const std::string& path() const { return file_->path(); }
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  [[noreturn]] void error(const std::string& field, const std::string& what) const {
    fail<InvalidArgument>(path(), ": ", field, ": ", what);
  }

  void need(uint64_t n, const std::string& field) const {
    if (n > left())
      error(field, detail::concat("needs ", n, " bytes at offset ", pos_, " but the file ends at ", size_,
                                  " (truncated?)"));
  }

  template <typename T>
  T read(const std::string& field) {
    need(sizeof(T), field);
    T v = load<T>(p_ + pos_);
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& field) {
    const uint64_t n = read<uint64_t>(field + " (string length)");
    need(n, detail::concat(field, " (string of ", n, " bytes)"));
    std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }

  // Reads one value of type `t` at the cursor; arrays are validated and skipped, not decoded.
  Value read_value(ValueType t, const std::string& key, int depth) {
    Value v;
    v.file_ = file_;
    v.key_ = key;
    v.type_ = t;
    switch (t) {
      case ValueType::u8: v.u_ = read<uint8_t>(key); break;
      case ValueType::i8: v.i_ = read<int8_t>(key); break;
      case ValueType::u16: v.u_ = read<uint16_t>(key); break;
      case ValueType::i16: v.i_ = read<int16_t>(key); break;
      case ValueType::u32: v.u_ = read<uint32_t>(key); break;
      case ValueType::i32: v.i_ = read<int32_t>(key); break;
      case ValueType::u64: v.u_ = read<uint64_t>(key); break;
      case ValueType::i64: v.i_ = read<int64_t>(key); break;
      case ValueType::f32: v.f_ = read<float>(key); break;
      case ValueType::f64: v.f_ = read<double>(key); break;
      case ValueType::boolean: {
        const uint8_t b = read<uint8_t>(key);
        if (b > 1) error(key, detail::concat("bool value ", int(b), " is neither 0 nor 1"));
        v.u_ = b;
        break;
      }
      case ValueType::string: v.s_ = read_string(key); break;
      case ValueType::array: {
        if (depth >= kMaxArrayDepth)
          error(key, detail::concat("arrays nested deeper than ", kMaxArrayDepth, " levels"));
        const uint32_t et = read<uint32_t>(key + " (array element type)");
        if (!valid_value_type(et)) error(key, detail::concat("unknown array element type ", et));
        v.elem_ = static_cast<ValueType>(et);
        v.count_ = read<uint64_t>(key + " (array length)");
        v.depth_ = depth + 1;
        const size_t begin = pos_;
        skip_elements(v.elem_, v.count_, key, depth + 1);
        v.data_ = p_ + begin;
        v.nbytes_ = pos_ - begin;
        break;
      }
    }
    return v;
  }

 private:
  // Validates `count` encoded elements of type `t` and moves past them. The count is checked
  // against the bytes left before looping, so a huge count fails at once.
  void skip_elements(ValueType t, uint64_t count, const std::string& key, int depth) {
    const size_t fixed = scalar_size(t);
    // Smallest encoding of one element: fixed size, 8 (string length), 12 (array type + length).
    const uint64_t min_bytes = fixed ? fixed : (t == ValueType::string ? 8 : 12);
    if (count > left() / min_bytes)
      error(key, detail::concat("array of ", count, " ", value_type_name(t), " elements needs at least ",
                                min_bytes, " bytes each but only ", left(), " bytes are left in the file"));
    if (t == ValueType::boolean) {
      for (uint64_t i = 0; i < count; ++i)
        if (p_[pos_ + i] > 1)
          error(detail::concat(key, "[", i, "]"), detail::concat("bool value ", int(p_[pos_ + i]), " is neither 0 nor 1"));
    }
    if (fixed) {
      pos_ += static_cast<size_t>(count * fixed);
      return;
    }
    for (uint64_t i = 0; i < count; ++i) {
      if (t == ValueType::string) {
        const uint64_t n = read<uint64_t>(key);
        if (n > left())
          error(detail::concat(key, "[", i, "]"),
                detail::concat("string of ", n, " bytes runs past the end of the file (", left(), " bytes left)"));
        pos_ += static_cast<size_t>(n);
      } else {
        (void)read_value(ValueType::array, key, depth);
      }
    }
  }

  std::shared_ptr<const MappedFile> file_;
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
};

// Decodes elements of a validated array.
class ArrayReader {
 public:
  explicit ArrayReader(const Value& v) : v_(v), p_(v.data_), end_(v.data_ + v.nbytes_) {}

  Value next() {
    Value e;
    e.file_ = v_.file_;
    e.key_ = detail::concat(v_.key_, "[", index_++, "]");
    e.type_ = v_.elem_;
    const size_t fixed = scalar_size(v_.elem_);
    if (fixed) {
      take(fixed);
      switch (v_.elem_) {
        case ValueType::u8: case ValueType::boolean: e.u_ = load<uint8_t>(p_ - 1); break;
        case ValueType::i8: e.i_ = load<int8_t>(p_ - 1); break;
        case ValueType::u16: e.u_ = load<uint16_t>(p_ - 2); break;
        case ValueType::i16: e.i_ = load<int16_t>(p_ - 2); break;
        case ValueType::u32: e.u_ = load<uint32_t>(p_ - 4); break;
        case ValueType::i32: e.i_ = load<int32_t>(p_ - 4); break;
        case ValueType::u64: e.u_ = load<uint64_t>(p_ - 8); break;
        case ValueType::i64: e.i_ = load<int64_t>(p_ - 8); break;
        case ValueType::f32: e.f_ = load<float>(p_ - 4); break;
        case ValueType::f64: e.f_ = load<double>(p_ - 8); break;
        default: break;
      }
    } else if (v_.elem_ == ValueType::string) {
      take(8);
      const uint64_t n = load<uint64_t>(p_ - 8);
      take(n);
      e.s_.assign(reinterpret_cast<const char*>(p_ - n), n);
    } else {  // nested array: element type, count, then its elements (validated at open)
      take(12);
      e.elem_ = static_cast<ValueType>(load<uint32_t>(p_ - 12));
      e.count_ = load<uint64_t>(p_ - 8);
      e.depth_ = v_.depth_ + 1;
      e.data_ = p_;
      skip_nested(e.elem_, e.count_);
      e.nbytes_ = static_cast<size_t>(p_ - e.data_);
    }
    return e;
  }

 private:
  void take(uint64_t n) {
    // The array was validated at open; a failure here would be a reader bug, still not UB.
    if (n > static_cast<uint64_t>(end_ - p_)) fail<InvalidArgument>(v_.file_->path(), ": ", v_.key_, ": array data is corrupt");
    p_ += n;
  }
  void skip_nested(ValueType t, uint64_t count) {
    const size_t fixed = scalar_size(t);
    if (fixed) {
      if (count > static_cast<uint64_t>(end_ - p_) / fixed) take(UINT64_MAX);
      take(count * fixed);
      return;
    }
    for (uint64_t i = 0; i < count; ++i) {
      if (t == ValueType::string) {
        take(8);
        take(load<uint64_t>(p_ - 8));
      } else {
        take(12);
        const auto et = static_cast<ValueType>(load<uint32_t>(p_ - 12));
        skip_nested(et, load<uint64_t>(p_ - 8));
      }
    }
  }

  const Value& v_;
  const uint8_t* p_;
  const uint8_t* end_;
  uint64_t index_ = 0;
};

// ------------------------------------------------------------------------------------------ Value

void Value::mismatch(const char* wanted) const {
  fail<InvalidArgument>(file_ ? file_->path() : std::string("gguf"), ": ", key_, ": expected ", wanted, ", found ",
                        describe());
}

bool Value::is_integer() const {
  switch (type_) {
    case ValueType::u8: case ValueType::i8: case ValueType::u16: case ValueType::i16: case ValueType::u32:
    case ValueType::i32: case ValueType::u64: case ValueType::i64: return true;
    default: return false;
  }
}

bool Value::is_number() const { return is_integer() || type_ == ValueType::f32 || type_ == ValueType::f64; }

static bool is_unsigned(ValueType t) {
  return t == ValueType::u8 || t == ValueType::u16 || t == ValueType::u32 || t == ValueType::u64;
}

int64_t Value::as_int() const {
  if (!is_integer()) mismatch("an integer");
  if (is_unsigned(type_)) {
    if (u_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail<InvalidArgument>(file_->path(), ": ", key_, ": value ", u_, " is out of range");
    return static_cast<int64_t>(u_);
  }
  return i_;
}

double Value::as_double() const {
  if (type_ == ValueType::f32 || type_ == ValueType::f64) return f_;
  if (!is_integer()) mismatch("a number");
  return is_unsigned(type_) ? static_cast<double>(u_) : static_cast<double>(i_);
}

bool Value::as_bool() const {
  if (type_ != ValueType::boolean) mismatch("a bool");
  return u_ != 0;
}

const std::string& Value::as_string() const {
  if (type_ != ValueType::string) mismatch("a string");
  return s_;
}

ValueType Value::elem_type() const {
  if (type_ != ValueType::array) mismatch("an array");
  return elem_;
}

uint64_t Value::array_size() const {
  if (type_ != ValueType::array) mismatch("an array");
  return count_;
}

std::vector<Value> Value::elements() const {
  if (type_ != ValueType::array) mismatch("an array");
  std::vector<Value> r;
  r.reserve(count_);  // bounded: validated against the file size at open
  ArrayReader a(*this);
  for (uint64_t i = 0; i < count_; ++i) r.push_back(a.next());
  return r;
}

std::vector<std::string> Value::as_strings() const {
  if (type_ != ValueType::array || elem_ != ValueType::string) mismatch("an array of strings");
  std::vector<std::string> r;
  r.reserve(count_);
  ArrayReader a(*this);
  for (uint64_t i = 0; i < count_; ++i) r.push_back(std::move(a.next().s_));
  return r;
}

std::vector<int64_t> Value::as_ints() const {
  if (type_ != ValueType::array) mismatch("an array of integers");
  std::vector<int64_t> r;
  r.reserve(count_);
  ArrayReader a(*this);
  for (uint64_t i = 0; i < count_; ++i) {
    Value e = a.next();
    if (!e.is_integer()) mismatch("an array of integers");
    r.push_back(e.as_int());
  }
  return r;
}

std::vector<double> Value::as_doubles() const {
  if (type_ != ValueType::array) mismatch("an array of numbers");
  std::vector<double> r;
  r.reserve(count_);
  ArrayReader a(*this);
  for (uint64_t i = 0; i < count_; ++i) {
    Value e = a.next();
    if (!e.is_number()) mismatch("an array of numbers");
    r.push_back(e.as_double());
  }
  return r;
}

std::vector<bool> Value::as_bools() const {
  if (type_ != ValueType::array || elem_ != ValueType::boolean) mismatch("an array of bools");
  std::vector<bool> r;
  r.reserve(count_);
  ArrayReader a(*this);
  for (uint64_t i = 0; i < count_; ++i) r.push_back(a.next().u_ != 0);
  return r;
}

std::string Value::describe() const {
  std::ostringstream os;
  os << value_type_name(type_);
  switch (type_) {
    case ValueType::string: os << " \"" << (s_.size() > 40 ? s_.substr(0, 40) + "..." : s_) << "\""; break;
    case ValueType::array: os << "<" << value_type_name(elem_) << ">[" << count_ << "]"; break;
    case ValueType::boolean: os << (u_ ? " true" : " false"); break;
    case ValueType::f32: case ValueType::f64: os << " " << f_; break;
    default: os << " " << (is_unsigned(type_) ? std::to_string(u_) : std::to_string(i_)); break;
  }
  return os.str();
}

// ------------------------------------------------------------------------------------------ File

File File::open(const std::string& path) { return parse(MappedFile::open(path)); }

File File::parse(std::shared_ptr<const MappedFile> bytes) {
  File f;
  f.bytes_ = bytes;
  Parser in(bytes);
  const std::string& path = bytes->path();

  const uint32_t magic = in.read<uint32_t>("header (magic)");
  if (magic != kMagic) {
    const uint8_t* m = bytes->data();
    in.error("header", detail::concat("bad magic 0x", std::hex, m[0] | (m[1] << 8) | (m[2] << 16) | (uint32_t(m[3]) << 24),
                                      std::dec, " (not a GGUF file)"));
  }
  f.version_ = in.read<uint32_t>("header (version)");
  if (f.version_ != 2 && f.version_ != 3) {
    in.error("header", detail::concat("unsupported version ", f.version_, f.version_ == 1 ? " (GGUF v1 is obsolete)" : "",
                                      (f.version_ & 0xffff) == 0 && f.version_ != 0 ? " (big-endian file?)" : "",
                                      "; supported: 2, 3"));
  }
  const uint64_t n_tensors = in.read<uint64_t>("header (tensor count)");
  const uint64_t n_kv = in.read<uint64_t>("header (metadata count)");
  // Each metadata entry takes at least 8 (key length) + 1 (key) + 4 (type) + 1 (value) bytes; each
  // tensor info at least 8 + 1 + 4 + 8 + 4 + 8. Bounding the counts first keeps huge ones from looping.
  if (n_kv > in.left() / 14)
    in.error("header", detail::concat("metadata count ", n_kv, " cannot fit in the ", bytes->size(), "-byte file"));
  if (n_tensors > in.left() / 33)
    in.error("header", detail::concat("tensor count ", n_tensors, " cannot fit in the ", bytes->size(), "-byte file"));

  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string where = detail::concat("metadata entry ", i);
    std::string key = in.read_string(where + " key");
    if (key.empty()) in.error(where, "empty key");
    if (key.size() > kMaxKeyBytes) in.error(where, detail::concat("key of ", key.size(), " bytes is too long"));
    const uint32_t t = in.read<uint32_t>(key + " (value type)");
    if (!valid_value_type(t)) in.error(key, detail::concat("unknown value type ", t));
    Value v = in.read_value(static_cast<ValueType>(t), key, 0);
    if (f.kv_.count(key)) in.error(key, "duplicate metadata key");
    f.kv_.emplace(std::move(key), std::move(v));
  }

  if (const Value* a = f.find("general.alignment")) {
    if (a->type() != ValueType::u32) in.error("general.alignment", "expected u32, found " + a->describe());
    const int64_t al = a->as_int();
    if (al == 0 || (al & (al - 1)) != 0) in.error("general.alignment", detail::concat(al, " is not a power of two"));
    f.alignment_ = static_cast<uint32_t>(al);
  }

  f.tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo ti;
    ti.name = in.read_string(detail::concat("tensor info ", i, " name"));
    const std::string field = "tensor '" + ti.name + "'";
    if (ti.name.empty()) in.error(detail::concat("tensor info ", i), "empty name");
    const uint32_t n_dims = in.read<uint32_t>(field + " (n_dims)");
    if (n_dims == 0 || n_dims > kMaxDims)
      in.error(field, detail::concat("n_dims ", n_dims, " is outside 1..", kMaxDims));
    uint64_t ne[kMaxDims] = {};
    for (uint32_t d = 0; d < n_dims; ++d) ne[d] = in.read<uint64_t>(field + " (ne)");
    ti.ggml_type = in.read<uint32_t>(field + " (type)");
    const uint64_t rel_offset = in.read<uint64_t>(field + " (offset)");

    std::string dims_str;
    for (uint32_t d = 0; d < n_dims; ++d) dims_str += (d ? ", " : "") + std::to_string(ne[d]);
    const GgmlType* gt = find_ggml_type(ti.ggml_type);
    if (!gt) in.error(field, detail::concat("unknown tensor type ", ti.ggml_type));
    if (!gt->has_dtype)
      fail<NotSupported>(path, ": ", field, ": tensor type ", gt->name, " (", ti.ggml_type,
                         ") is not supported (supported: F32, F16, BF16, F64, I8..I64, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
                         "Q4_K, Q5_K, Q6_K)");
    ti.dtype = gt->dtype;
    // Dims: positive, and the element count must fit in int64.
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      if (ne[d] == 0 || ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        in.error(field, detail::concat("dimension ", d, " of ne [", dims_str, "] is ", ne[d], " (must be >= 1)"));
      if (numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne[d])
        in.error(field, detail::concat("element count of ne [", dims_str, "] overflows"));
      numel *= ne[d];
    }
    const auto& info = dtype_info(ti.dtype);
    if (ne[0] % info.block_elems != 0)
      in.error(field, detail::concat("ne0 ", ne[0], " is not a multiple of the ", gt->name, " block size ",
                                     info.block_elems));
    // Bytes = (numel / block_elems) * block_bytes, checked for overflow.
    const uint64_t blocks = numel / info.block_elems;
    if (blocks > std::numeric_limits<uint64_t>::max() / info.block_bytes)
      in.error(field, detail::concat("byte size of ne [", dims_str, "] overflows"));
    ti.nbytes = blocks * info.block_bytes;
    for (uint32_t d = 0; d < n_dims; ++d) ti.shape.push_back(static_cast<int64_t>(ne[n_dims - 1 - d]));
    if (rel_offset % f.alignment_ != 0)
      in.error(field, detail::concat("data offset ", rel_offset, " is not a multiple of the alignment ", f.alignment_));
    ti.offset = rel_offset;  // made absolute below, once the data section start is known
    if (f.tensor_index_.count(ti.name)) in.error(field, "duplicate tensor name");
    f.tensor_index_.emplace(ti.name, f.tensors_.size());
    f.tensors_.push_back(std::move(ti));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t end_of_infos = in.pos();
  f.data_offset_ = (end_of_infos + f.alignment_ - 1) / f.alignment_ * f.alignment_;
  const uint64_t size = bytes->size();
  for (auto& ti : f.tensors_) {
    const uint64_t rel = ti.offset;
    if (f.data_offset_ > size || rel > size - f.data_offset_ || ti.nbytes > size - f.data_offset_ - rel)
      in.error("tensor '" + ti.name + "'",
               detail::concat("data [offset ", rel, ", ", ti.nbytes, " bytes] runs past the end of the file (size ",
                              size, ", data section at ", f.data_offset_, ")"));
    ti.offset = f.data_offset_ + rel;
  }
  return f;
}

const Value* File::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const Value& File::get(const std::string& key) const {
  if (const Value* v = find(key)) return *v;
  fail<InvalidArgument>(path(), ": missing metadata key '", key, "'");
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Tensor File::tensor(const TensorInfo& info) const {
  void* p = const_cast<uint8_t*>(bytes_->data() + info.offset);  // read-only mapping: views must not be written
  return Tensor::from_blob(p, info.shape, info.dtype, Device::cpu(), std::const_pointer_cast<MappedFile>(bytes_));
}

}  // namespace flagos::model::gguf
