// GGUF reader: every metadata value type, every tensor type against dequantized references,
// version 2, and malformed files (each must throw InvalidArgument naming the file, never crash).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>

#include "file_builders.h"
#include "flagos/error.h"
#include "flagos/ops.h"
#include "model/gguf.h"
#include "model/loaders.h"

namespace flagos::model {
namespace {

using gguf::File;
using testing::GgufBuilder;
using testing::kArray;
using testing::kBool;
using testing::kString;
using testing::kU32;
using testing::kU8;

const std::string kAllTypes = std::string(FLAGOS_MODEL_FIXTURES) + "/gguf/all_types.gguf";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

File parse(std::vector<uint8_t> bytes, const std::string& name = "mem.gguf") {
  return File::parse(MappedFile::from_memory(name, std::move(bytes)));
}

// Parsing must fail with InvalidArgument whose message names the file and contains `what`.
void expect_invalid(const std::vector<uint8_t>& bytes, const std::string& what, const std::string& name = "bad.gguf") {
  try {
    parse(bytes, name);
    ADD_FAILURE() << "parsed without error; expected: " << what;
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(name + ": "), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "message: " << msg << "\nexpected to contain: " << what;
  }
}

TEST(Gguf, EveryMetadataType) {
  const File f = File::open(kAllTypes);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get("general.architecture").as_string(), "test");
  EXPECT_EQ(f.get("t.u8").type(), gguf::ValueType::u8);
  EXPECT_EQ(f.get("t.u8").as_int(), 200);
  EXPECT_EQ(f.get("t.i8").as_int(), -100);
  EXPECT_EQ(f.get("t.u16").as_int(), 60000);
  EXPECT_EQ(f.get("t.i16").as_int(), -30000);
  EXPECT_EQ(f.get("t.u32").as_int(), 4000000000LL);
  EXPECT_EQ(f.get("t.i32").as_int(), -2000000000LL);
  EXPECT_EQ(f.get("t.u64").as_int(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(f.get("t.i64").as_int(), -(int64_t{1} << 62));
  EXPECT_EQ(f.get("t.f32").as_double(), 0.25);
  EXPECT_EQ(f.get("t.f64").as_double(), -1.0e300);
  EXPECT_EQ(f.get("t.u16").as_double(), 60000.0);
  EXPECT_TRUE(f.get("t.bool").as_bool());
  EXPECT_EQ(f.get("t.string").as_string(), "h\xC3\xA9llo \xE2\x96\x81w\xC3\xB6rld");
  EXPECT_EQ(f.get("t.empty_string").as_string(), "");
  EXPECT_EQ(f.get("t.arr_u8").as_ints(), (std::vector<int64_t>{1, 2, 255}));
  EXPECT_EQ(f.get("t.arr_i16").as_ints(), (std::vector<int64_t>{-3, 7}));
  EXPECT_EQ(f.get("t.arr_u64").as_ints(), (std::vector<int64_t>{int64_t{1} << 40, 5}));
  EXPECT_EQ(f.get("t.arr_f32").as_doubles(), (std::vector<double>{0.5, -2.0, 3.25}));
  EXPECT_EQ(f.get("t.arr_f64").as_doubles(), (std::vector<double>{1e-300}));
  EXPECT_EQ(f.get("t.arr_bool").as_bools(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f.get("t.arr_str").as_strings(), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f.get("t.arr_str").elem_type(), gguf::ValueType::string);
  EXPECT_EQ(f.get("t.arr_str").array_size(), 3u);
  const auto nested = f.get("t.arr_nested").elements();
  ASSERT_EQ(nested.size(), 3u);
  EXPECT_EQ(nested[0].as_ints(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(nested[1].as_ints(), (std::vector<int64_t>{3}));
  EXPECT_EQ(nested[2].as_ints(), (std::vector<int64_t>{4, 5, 6}));
  const auto nested_str = f.get("t.arr_nested_str").elements();
  ASSERT_EQ(nested_str.size(), 2u);
  EXPECT_EQ(nested_str[0].as_strings(), (std::vector<std::string>{"x", "yy"}));
  EXPECT_EQ(nested_str[1].as_strings(), (std::vector<std::string>{"zzz"}));
  // Type mismatches name the file and key.
  try {
    (void)f.get("t.u8").as_string();
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("all_types.gguf: t.u8: expected a string, found u8 200"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)f.get("t.string").as_int(), InvalidArgument);
  EXPECT_THROW((void)f.get("t.arr_str").as_ints(), InvalidArgument);
  EXPECT_THROW((void)f.get("t.f32").as_int(), InvalidArgument);
  EXPECT_THROW((void)f.get("t.u8").elements(), InvalidArgument);
  EXPECT_THROW((void)f.get("no.such.key"), InvalidArgument);
  EXPECT_EQ(f.find("no.such.key"), nullptr);
}

TEST(Gguf, EveryTensorTypeMatchesReference) {
  const File f = File::open(kAllTypes);
  const std::vector<std::pair<std::string, DType>> types = {
      {"F32", DType::f32},   {"F16", DType::f16},   {"BF16", DType::bf16}, {"F64", DType::f64},  {"I8", DType::i8},
      {"I16", DType::i16},   {"I32", DType::i32},   {"I64", DType::i64},   {"Q8_0", DType::q8_0}, {"Q4_0", DType::q4_0},
      {"Q4_1", DType::q4_1}, {"Q5_0", DType::q5_0}, {"Q5_1", DType::q5_1}, {"Q4_K", DType::q4_k}, {"Q5_K", DType::q5_k},
      {"Q6_K", DType::q6_k}};
  for (const auto& [name, dtype] : types) {
    SCOPED_TRACE(name);
    const gguf::TensorInfo* ti = f.find_tensor("t." + name);
    const gguf::TensorInfo* ri = f.find_tensor("ref." + name);
    ASSERT_NE(ti, nullptr);
    ASSERT_NE(ri, nullptr);
    EXPECT_EQ(ti->dtype, dtype);
    EXPECT_EQ(ti->shape, ri->shape);
    EXPECT_EQ(ti->offset % f.alignment(), 0u);
    const Tensor t = f.tensor(*ti);
    EXPECT_EQ(t.shape(), ti->shape);
    EXPECT_EQ(t.nbytes(), ti->nbytes);
    const std::vector<float> ref = f.tensor(*ri).to_vector<float>();
    const std::vector<float> got =
        is_quant(dtype) ? ops::dequantize(t, DType::f32).to_vector<float>() : t.to_vector<float>();
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_TRUE(std::isfinite(ref[i]));
      ASSERT_EQ(got[i], ref[i]) << "element " << i;
    }
  }
  // Block tensors really are stored as blocks: 256-wide Q4_K rows are 144 bytes.
  const gguf::TensorInfo* q4k = f.find_tensor("t.Q4_K");
  EXPECT_EQ(q4k->nbytes, static_cast<uint64_t>(q4k->shape[0]) * 144u);
}

TEST(Gguf, TensorsAreViewsIntoTheMapping) {
  const File f = File::open(kAllTypes);
  const gguf::TensorInfo* ti = f.find_tensor("t.F32");
  Tensor a = f.tensor(*ti), b = f.tensor(*ti);
  EXPECT_EQ(a.data(), b.data());
  // The view outlives the File object (it holds the mapping).
  Tensor kept;
  std::vector<float> expect;
  {
    const File g = File::open(kAllTypes);
    kept = g.tensor(*g.find_tensor("t.F32"));
    expect = kept.to_vector<float>();
  }
  EXPECT_EQ(kept.to_vector<float>(), expect);
}

TEST(Gguf, Version2ReadsLikeVersion3) {
  std::vector<uint8_t> bytes = read_bytes(kAllTypes);
  ASSERT_GT(bytes.size(), 8u);
  bytes[4] = 2;
  const File f = parse(bytes, "v2.gguf");
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.get("t.u32").as_int(), 4000000000LL);
  EXPECT_EQ(f.tensors().size(), File::open(kAllTypes).tensors().size());
}

TEST(Gguf, AlignmentFromMetadata) {
  GgufBuilder b;
  b.alignment = 64;
  b.kv("general.alignment", kU32, GgufBuilder::enc<uint32_t>(64));
  b.tensor("a", {4}, 0, 16).tensor("b", {8}, 0, 32);
  const File f = parse(b.build());
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.find_tensor("b")->offset - f.data_offset(), 64u);
  // An offset aligned to 32 but not 64 is rejected.
  GgufBuilder c = b;
  c.tensors[1].offset = 32;
  expect_invalid(c.build(), "tensor 'b': data offset 32 is not a multiple of the alignment 64");
}

TEST(Gguf, EmptyModelAndOverlappingTensors) {
  GgufBuilder b;
  EXPECT_TRUE(parse(b.build()).tensors().empty());
  b.tensor("a", {8}, 0, 32).tensor("b", {4}, 0, 16, 0);  // b overlaps a: allowed
  const File f = parse(b.build());
  EXPECT_EQ(f.find_tensor("a")->offset, f.find_tensor("b")->offset);
}

// A small valid file with one key of every kind and a tensor, for truncation.
GgufBuilder small_valid() {
  GgufBuilder b;
  b.kv("general.architecture", kString, GgufBuilder::enc_str("llama"));
  b.kv("x.flag", kBool, GgufBuilder::enc<uint8_t>(1));
  testing::Bytes arr;
  arr.put<uint32_t>(kString).put<uint64_t>(2).str("ab").str("c");
  b.kv("x.strings", kArray, arr.vec());
  b.tensor("w", {32, 2}, 8 /*Q8_0*/, 2 * 34);
  return b;
}

TEST(Gguf, TruncatedAtEveryOffsetFails) {
  const std::vector<uint8_t> full = small_valid().build();
  EXPECT_NO_THROW(parse(full));
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(n));
    EXPECT_THROW(parse(cut, "cut.gguf"), InvalidArgument);
  }
}

TEST(Gguf, RealFileTruncatedFails) {
  const std::vector<uint8_t> full = read_bytes(kAllTypes);
  const File f = parse(full);
  // Every offset through the header, then a spread over the data.
  for (size_t n = 0; n < full.size(); n += (n < f.data_offset() + 64 ? 1 : 97)) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(n));
    try {
      parse(cut, "cut.gguf");
      ADD_FAILURE() << "truncated at " << n << " parsed";
    } catch (const InvalidArgument& e) {
      EXPECT_EQ(std::string(e.what()).rfind("cut.gguf: ", 0), 0u) << e.what();
    }
  }
}

TEST(Gguf, BadHeader) {
  expect_invalid({}, "header (magic): needs 4 bytes at offset 0 but the file ends at 0");
  expect_invalid({'G', 'G'}, "needs 4 bytes");
  GgufBuilder b;
  b.magic = 0x464c4c47;
  expect_invalid(b.build(), "bad magic");
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    GgufBuilder c;
    c.version = v;
    expect_invalid(c.build(), "unsupported version " + std::to_string(v));
  }
  GgufBuilder big;
  big.n_kv = uint64_t{1} << 60;
  expect_invalid(big.build(), "metadata count 1152921504606846976 cannot fit");
  GgufBuilder bigt;
  bigt.n_tensors = uint64_t{1} << 60;
  expect_invalid(bigt.build(), "tensor count 1152921504606846976 cannot fit");
  GgufBuilder more;  // claims one more key than there is
  more.kv("a", kU8, {1});
  more.n_kv = 2;
  expect_invalid(more.build(), "metadata entry 1");
}

TEST(Gguf, BadMetadata) {
  {
    testing::Bytes e;  // a key claiming 2^63 bytes (then enough bytes for the count check)
    e.put<uint64_t>(uint64_t{1} << 63).put<uint64_t>(0).put<uint64_t>(0);
    GgufBuilder b;
    b.kvs.push_back(e.vec());
    expect_invalid(b.build(), "metadata entry 0 key (string of 9223372036854775808 bytes)");
  }
  {
    GgufBuilder b;
    b.kv("k", kString, GgufBuilder::enc<uint64_t>(1000));  // string length past the end
    expect_invalid(b.build(), "k (string of 1000 bytes): needs 1000 bytes");
  }
  {
    GgufBuilder b;
    b.kv("k", 13, {0, 0, 0, 0});
    expect_invalid(b.build(), "k: unknown value type 13");
  }
  {
    GgufBuilder b;
    b.kv("k", kBool, {2});
    expect_invalid(b.build(), "k: bool value 2 is neither 0 nor 1");
  }
  {
    GgufBuilder b;
    b.kv("", kU8, {1});
    expect_invalid(b.build(), "metadata entry 0: empty key");
  }
  {
    GgufBuilder b;
    b.kv("k", kU8, {1}).kv("k", kU8, {2});
    expect_invalid(b.build(), "k: duplicate metadata key");
  }
  {
    testing::Bytes a;  // 2^60 u32 elements
    a.put<uint32_t>(kU32).put<uint64_t>(uint64_t{1} << 60);
    GgufBuilder b;
    b.kv("k", kArray, a.vec());
    expect_invalid(b.build(), "k: array of 1152921504606846976 u32 elements needs at least 4 bytes each");
  }
  {
    testing::Bytes a;  // 2^60 strings
    a.put<uint32_t>(kString).put<uint64_t>(uint64_t{1} << 60);
    GgufBuilder b;
    b.kv("k", kArray, a.vec());
    expect_invalid(b.build(), "array of 1152921504606846976 string elements");
  }
  {
    testing::Bytes a;  // second string's length runs past the end
    a.put<uint32_t>(kString).put<uint64_t>(2).str("ok").put<uint64_t>(uint64_t{1} << 40);
    GgufBuilder b;
    b.kv("k", kArray, a.vec());
    expect_invalid(b.build(), "k[1]: string of 1099511627776 bytes runs past the end of the file");
  }
  {
    testing::Bytes a;  // bool array with a 7 in it
    a.put<uint32_t>(kBool).put<uint64_t>(3).put<uint8_t>(1).put<uint8_t>(7).put<uint8_t>(0);
    GgufBuilder b;
    b.kv("k", kArray, a.vec());
    expect_invalid(b.build(), "k[1]: bool value 7");
  }
  {
    testing::Bytes a;  // unknown element type
    a.put<uint32_t>(99).put<uint64_t>(1);
    GgufBuilder b;
    b.kv("k", kArray, a.vec());
    expect_invalid(b.build(), "k: unknown array element type 99");
  }
  {
    // Arrays nested 9 deep (each holding one array), innermost one u8.
    testing::Bytes a;
    for (int i = 0; i < 8; ++i) a.put<uint32_t>(kArray).put<uint64_t>(1);
    a.put<uint32_t>(kU8).put<uint64_t>(1).put<uint8_t>(5);
    GgufBuilder b;
    b.kv("k", kArray, a.vec());
    expect_invalid(b.build(), "k: arrays nested deeper than 8 levels");
  }
  {
    GgufBuilder b;
    b.kv("general.alignment", kU32, GgufBuilder::enc<uint32_t>(24));
    expect_invalid(b.build(), "general.alignment: 24 is not a power of two");
    GgufBuilder z;
    z.kv("general.alignment", kU32, GgufBuilder::enc<uint32_t>(0));
    expect_invalid(z.build(), "general.alignment: 0 is not a power of two");
    GgufBuilder s;
    s.kv("general.alignment", kString, GgufBuilder::enc_str("32"));
    expect_invalid(s.build(), "general.alignment: expected u32");
  }
}

TEST(Gguf, BadTensorInfos) {
  auto one = [](std::vector<uint64_t> ne, uint32_t type, size_t nbytes, std::optional<uint64_t> off = {}) {
    GgufBuilder b;
    b.tensor("blk.0.attn_q.weight", std::move(ne), type, nbytes, off);
    return b.build();
  };
  expect_invalid(one({}, 0, 0), "tensor 'blk.0.attn_q.weight': n_dims 0 is outside 1..4");
  expect_invalid(one({1, 1, 1, 1, 1}, 0, 4), "n_dims 5 is outside 1..4");
  expect_invalid(one({4, 0}, 0, 0), "dimension 1 of ne [4, 0] is 0");
  expect_invalid(one({uint64_t{1} << 63}, 0, 0), "dimension 0 of ne [9223372036854775808] is 9223372036854775808");
  expect_invalid(one({uint64_t{1} << 32, uint64_t{1} << 32}, 0, 0), "element count of ne [4294967296, 4294967296] overflows");
  expect_invalid(one({uint64_t{1} << 62, 1}, 28 /*F64*/, 0), "byte size of ne [4611686018427387904, 1] overflows");
  expect_invalid(one({16, 2}, 2 /*Q4_0*/, 36), "ne0 16 is not a multiple of the Q4_0 block size 32");
  expect_invalid(one({100}, 12 /*Q4_K*/, 0), "ne0 100 is not a multiple of the Q4_K block size 256");
  expect_invalid(one({4}, 99, 16), "unknown tensor type 99");
  EXPECT_THROW(parse(one({256}, 10 /*Q2_K*/, 84)), NotSupported);
  expect_invalid(one({4}, 0, 16, 4), "data offset 4 is not a multiple of the alignment 32");
  expect_invalid(one({1024}, 0, 16), "tensor 'blk.0.attn_q.weight': data [offset 0, 4096 bytes] runs past the end");
  expect_invalid(one({4}, 0, 16, uint64_t{1} << 62), "runs past the end of the file");
  expect_invalid(one({4}, 0, 16, ~uint64_t{0} - 31), "runs past the end of the file");
  {
    GgufBuilder b;
    b.tensor("x", {4}, 0, 16).tensor("x", {4}, 0, 16);
    expect_invalid(b.build(), "tensor 'x': duplicate tensor name");
  }
  {
    GgufBuilder b;
    b.tensor("", {4}, 0, 16);
    expect_invalid(b.build(), "tensor info 0: empty name");
  }
}

TEST(Gguf, ErrorsNameTheFileOnDisk) {
  const std::string path = ::testing::TempDir() + "model.gguf";
  GgufBuilder b;
  b.tensor("blk.0.attn_q.weight", {1024}, 0, 16);
  const std::vector<uint8_t> bytes = b.build();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));
  try {
    File::open(path);
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": tensor 'blk.0.attn_q.weight': data [offset 0, 4096 bytes] runs past the end of the file (size " +
                  std::to_string(bytes.size()) + ", data section at 96)");
  }
  EXPECT_THROW(File::open(path + ".missing"), InvalidArgument);
  EXPECT_THROW(File::open(::testing::TempDir()), InvalidArgument);  // a directory
}

}  // namespace
}  // namespace flagos::model

namespace flagos::model {
namespace {

// Random byte edits of a real model file: parsing and loading either succeed or throw a
// flagos::Error (checked under ASan/UBSan in the sanitizer build). Seed printed for replay.
TEST(Gguf, RandomMutationsOnlyThrowErrors) {
  const std::vector<uint8_t> base = read_bytes(std::string(FLAGOS_MODEL_FIXTURES) + "/gguf/tiny_qwen3.gguf");
  const File f = parse(base);
  const size_t header = f.data_offset();
  const uint64_t seed = std::random_device{}();
  std::printf("[ seed     ] %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  int ok = 0, errors = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::vector<uint8_t> b = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % header;  // metadata and tensor infos
      switch (rng() % 3) {
        case 0: b[at] = static_cast<uint8_t>(rng()); break;
        case 1: b[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        default: b[at] = (rng() % 2) ? 0xff : 0x00; break;
      }
    }
    if (rng() % 5 == 0) b.resize(rng() % b.size());
    try {
      const File g = parse(b, "mutated.gguf");
      LoadedModel lm = loaders::load_gguf(g, LoadOptions{});
      validate_weights(lm.config, lm.weights);
      ++ok;
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_EQ(ok + errors, 400);
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace flagos::model
