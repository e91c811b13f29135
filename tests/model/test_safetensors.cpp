// safetensors reader: valid files (views, misaligned copies, overlaps, shards) and malformed
// headers, offsets and sizes (each must throw InvalidArgument naming the file).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "file_builders.h"
#include "flagos/error.h"
#include "model/safetensors.h"

namespace flagos::model {
namespace {

using safetensors::File;

File parse(std::vector<uint8_t> bytes, const std::string& name = "mem.safetensors") {
  return File::parse(MappedFile::from_memory(name, std::move(bytes)));
}

void expect_invalid(const std::vector<uint8_t>& bytes, const std::string& what) {
  const std::string name = "bad.safetensors";
  try {
    parse(bytes, name);
    ADD_FAILURE() << "parsed without error; expected: " << what;
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(name + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "message: " << msg << "\nexpected to contain: " << what;
  }
}

std::vector<uint8_t> floats(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

TEST(Safetensors, ReadsTensorsAsViews) {
  // Header padded to 8 bytes so the data is aligned.
  std::string h = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                  R"("b":{"dtype":"I64","shape":[1],"data_offsets":[16,24]},"e":{"dtype":"BF16","shape":[0,3],"data_offsets":[24,24]}})";
  while ((h.size() + 8) % 8) h += ' ';
  std::vector<uint8_t> data = floats({1.5f, -2.0f, 3.0f, 4.25f});
  testing::Bytes i64;
  i64.put<int64_t>(-7);
  data.insert(data.end(), i64.vec().begin(), i64.vec().end());
  const File f = parse(testing::safetensors_bytes(h, data));
  ASSERT_EQ(f.tensors().size(), 3u);
  const safetensors::TensorInfo* a = f.find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::f32);
  EXPECT_EQ(a->shape, (Shape{2, 2}));
  const Tensor t = f.tensor(*a);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1.5f, -2.0f, 3.0f, 4.25f}));
  EXPECT_EQ(f.tensor(*f.find_tensor("b")).to_vector<int64_t>(), (std::vector<int64_t>{-7}));
  EXPECT_EQ(f.tensor(*f.find_tensor("e")).numel(), 0);
  EXPECT_EQ(f.find_tensor("__metadata__"), nullptr);
  EXPECT_EQ(f.find_tensor("zzz"), nullptr);
}

TEST(Safetensors, MisalignedDataIsCopied) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";  // odd offset
  std::vector<uint8_t> data(1, 0xee);
  const auto f32 = floats({0.5f, 7.0f});
  data.insert(data.end(), f32.begin(), f32.end());
  const File f = parse(testing::safetensors_bytes(h, data));
  const Tensor t = f.tensor(*f.find_tensor("a"));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 4, 0u);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0.5f, 7.0f}));
}

TEST(Safetensors, OverlappingTensorsAreAllowed) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  const File f = parse(testing::safetensors_bytes(h, floats({1, 2})));
  EXPECT_EQ(f.tensor(*f.find_tensor("b")).to_vector<float>(), (std::vector<float>{2}));
}

TEST(Safetensors, Malformed) {
  const auto data = floats({1, 2, 3, 4});
  auto hdr = [&](const std::string& h) { return testing::safetensors_bytes(h, data); };
  expect_invalid({}, "header length: file has 0 bytes, needs at least 8");
  expect_invalid({1, 2, 3}, "needs at least 8");
  expect_invalid(testing::safetensors_bytes("{}", {}, uint64_t{1} << 40), "exceeds the limit");
  expect_invalid(testing::safetensors_bytes("{}", {}, 1000), "header length: 1000 bytes runs past the end of the file");
  expect_invalid(testing::safetensors_bytes("{}", {}, ~uint64_t{0}), "exceeds the limit");
  expect_invalid(hdr("{\"a\":"), "header: invalid JSON");
  expect_invalid(hdr("[1,2]"), "expected a JSON object, found array");
  expect_invalid(hdr(R"({"a":5})"), "tensor 'a': expected an object, found number");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[4]}})"), "tensor 'a': needs dtype, shape and data_offsets");
  expect_invalid(hdr(R"({"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})"), "dtype 'F8_E4M3' is not supported");
  expect_invalid(hdr(R"({"a":{"dtype":7,"shape":[4],"data_offsets":[0,16]}})"), "dtype: expected a string");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})"), "shape: -4 is not a non-negative integer");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})"), "shape: expected an array");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})"), "9 dims exceeds");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})"),
                 "element count overflows");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,20]}})"),
                 "tensor 'a': data_offsets [0, 20] run past the end of the data (16 bytes");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})"), "begin > end");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})"), "hold 16 bytes but F32[3] needs 3 x 4");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}})"), "expected [begin, end]");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[-1,15]}})"), "expected [begin, end]");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,18446744073709551615]}})"), "run past the end");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})"),
                 "tensor 'a': duplicate name");
  expect_invalid(hdr(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})"), "invalid JSON");
  expect_invalid(hdr(std::string("{\"a\xff\":1}")), "invalid JSON");
}

TEST(Safetensors, TruncatedAtEveryOffsetFails) {
  const std::string h = R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}})";
  const auto full = testing::safetensors_bytes(h, {1, 2, 3, 4, 5, 6});
  EXPECT_NO_THROW(parse(full));
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(n));
    EXPECT_THROW(parse(cut), InvalidArgument) << n;
  }
}

TEST(Safetensors, ShardIndex) {
  const std::string dir = ::testing::TempDir() + "shards_test";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) { std::ofstream(dir + "/" + name) << text; };
  write("ok.json", R"({"metadata":{},"weight_map":{"a":"m-1.safetensors","b":"m-2.safetensors","c":"m-1.safetensors"}})");
  const auto idx = safetensors::read_shard_index(dir + "/ok.json");
  EXPECT_EQ(idx.files, (std::vector<std::string>{dir + "/m-1.safetensors", dir + "/m-2.safetensors"}));
  EXPECT_EQ(idx.weight_map.at("b"), dir + "/m-2.safetensors");
  write("escape.json", R"({"weight_map":{"a":"../../etc/passwd"}})");
  EXPECT_THROW(safetensors::read_shard_index(dir + "/escape.json"), InvalidArgument);
  write("bad.json", R"({"weight_map":[1]})");
  EXPECT_THROW(safetensors::read_shard_index(dir + "/bad.json"), InvalidArgument);
  write("notjson.json", "{");
  EXPECT_THROW(safetensors::read_shard_index(dir + "/notjson.json"), InvalidArgument);
  write("empty.json", R"({"weight_map":{}})");
  EXPECT_THROW(safetensors::read_shard_index(dir + "/empty.json"), InvalidArgument);
  write("num.json", R"({"weight_map":{"a":3}})");
  EXPECT_THROW(safetensors::read_shard_index(dir + "/num.json"), InvalidArgument);
  EXPECT_THROW(safetensors::read_shard_index(dir + "/missing.json"), InvalidArgument);
}

}  // namespace
}  // namespace flagos::model
