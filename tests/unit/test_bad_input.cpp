// Bad input across op families: wrong shapes, dtypes, devices, out-of-range dims and indices,
// overlapping outputs and size overflow must raise InvalidArgument whose message names the op
// (and, where it helps, the offending value), before any kernel runs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "flagos/ops.h"
#include "flagos/tensor.h"

using namespace flagos;

namespace {

// Runs f; it must throw InvalidArgument whose message contains `op` and every one of `parts`.
void expect_invalid(const std::string& op, const std::function<void()>& f, const char* code,
                    std::initializer_list<const char*> parts = {}) {
  try {
    f();
    ADD_FAILURE() << code << ": did not throw";
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(op), std::string::npos) << code << ": message does not name '" << op << "': " << m;
    for (const char* p : parts) EXPECT_NE(m.find(p), std::string::npos) << code << ": message lacks '" << p << "': " << m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << code << ": threw something other than InvalidArgument: " << e.what();
  }
}
#define EXPECT_INVALID(op, stmt, ...) expect_invalid(op, [&] { (void)(stmt); }, #stmt, {__VA_ARGS__})

Tensor z(const Shape& s, DType t = DType::f32) { return ops::zeros(s, t); }
Tensor ids(std::vector<int64_t> v, DType t = DType::i64) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector(v, {n}, t);
}
// The same memory presented as another device (cpu:1): ops must refuse to mix devices.
Tensor elsewhere(const Tensor& t) {
  return Tensor::from_blob(t.data(), t.shape(), t.dtype(), Device{0, 1}, t.storage());
}
// A huge tensor that costs no memory (stride 0), for size-overflow checks.
Tensor huge(const Shape& s) { return z(Shape::filled(s.size(), 1)).expand(s); }

constexpr int64_t kBig = int64_t{1} << 62;

}  // namespace

// ---------------------------------------------------------------- index family

TEST(BadInput, Gather) {
  Tensor x = z({4, 5});
  EXPECT_INVALID("gather", ops::gather(Tensor(), 0, ids({0})));
  EXPECT_INVALID("gather", ops::gather(x, 1, z({4, 2})), "i32 or i64", "f32");
  EXPECT_INVALID("gather", ops::gather(x, 1, z({4, 2}, DType::boolean)), "bool");
  EXPECT_INVALID("gather", ops::gather(x, 1, ids({0, 1})), "rank");
  EXPECT_INVALID("gather", ops::gather(x, 1, z({5, 2}, DType::i64)), "dim 0");
  EXPECT_INVALID("gather", ops::gather(x, 2, z({4, 2}, DType::i64)), "dim 2");
  EXPECT_INVALID("gather", ops::gather(x, -3, z({4, 2}, DType::i64)), "dim -3");
  Tensor bad = Tensor::from_vector(std::vector<int64_t>{0, 5}, {1, 2}, DType::i64);
  EXPECT_INVALID("gather", ops::gather(x, 1, bad), "index 5", "size 5", "[0, 1]");
  Tensor neg = Tensor::from_vector(std::vector<int32_t>{-1}, {1, 1}, DType::i32);
  EXPECT_INVALID("gather", ops::gather(x, 0, neg), "index -1", "size 4");
  EXPECT_INVALID("gather", ops::gather(elsewhere(x), 1, z({4, 2}, DType::i64)), "device");
  EXPECT_INVALID("gather", ops::gather(ops::quantize(z({2, 32}), DType::q8_0), 1, z({2, 1}, DType::i64)), "q8_0");
}

TEST(BadInput, Scatter) {
  Tensor x = z({4, 5});
  Tensor idx = z({2, 3}, DType::i64);
  EXPECT_INVALID("scatter", ops::scatter(x, 0, idx, z({2, 3}, DType::f16)), "f16", "f32");
  EXPECT_INVALID("scatter", ops::scatter(x, 0, idx, z({2, 2})), "larger than src");
  EXPECT_INVALID("scatter", ops::scatter(x, 1, z({5, 1}, DType::i64), z({5, 1})), "larger than x");
  EXPECT_INVALID("scatter", ops::scatter(x, 0, z({2}, DType::i64), z({2})), "rank");
  EXPECT_INVALID("scatter", ops::scatter(x, 0, z({2, 3}, DType::f32), z({2, 3})), "i32 or i64");
  EXPECT_INVALID("scatter", ops::scatter(x, 5, idx, z({2, 3})), "dim 5");
  Tensor bad = Tensor::from_vector(std::vector<int64_t>{0, 4}, {2, 1}, DType::i64);
  EXPECT_INVALID("scatter", ops::scatter(x, 0, bad, z({2, 1}), true), "index 4", "size 4");
  EXPECT_INVALID("scatter", ops::scatter(x, 0, elsewhere(idx), z({2, 3})), "device");
}

TEST(BadInput, IndexSelectAndIndexAdd) {
  Tensor x = z({4, 5});
  EXPECT_INVALID("index_select", ops::index_select(x, 0, z({2, 2}, DType::i64)), "0-d or 1-d");
  EXPECT_INVALID("index_select", ops::index_select(x, 0, z({2}, DType::i16)), "i16");
  EXPECT_INVALID("index_select", ops::index_select(x, 2, ids({0})), "dim 2");
  EXPECT_INVALID("index_select", ops::index_select(x, 1, ids({0, 5})), "index 5", "size 5");
  EXPECT_INVALID("index_select", ops::index_select(x, 0, ids({-4})), "index -4");
  EXPECT_INVALID("index_select", ops::index_select(x, 0, elsewhere(ids({0}))), "device");

  EXPECT_INVALID("index_add", ops::index_add(x, 0, ids({0, 1}), z({3, 5})), "[3, 5]", "[2, 5]");
  EXPECT_INVALID("index_add", ops::index_add(x, 0, ids({0, 1}), z({2, 5}, DType::f64)), "f64");
  EXPECT_INVALID("index_add", ops::index_add(x, 0, ids({0, 9}), z({2, 5})), "index 9", "size 4");
  EXPECT_INVALID("index_add", ops::index_add(x, 0, z({1, 2}, DType::i64), z({2, 5})), "0-d or 1-d");
  EXPECT_INVALID("index_add", ops::index_add(x, 0, ids({0}), z({1, 5}), NAN), "alpha");
  EXPECT_INVALID("index_add", ops::index_add(z({4}, DType::i32), 0, ids({0}), z({1}, DType::i32), 0.5), "alpha");
  EXPECT_INVALID("index_add", ops::index_add(x, -3, ids({0}), z({1, 5})), "dim -3");
}

TEST(BadInput, CatStackSplit) {
  Tensor a = z({2, 3});
  EXPECT_INVALID("cat", ops::cat({}), "at least one");
  EXPECT_INVALID("cat", ops::cat({a, z({2, 4})}, 0), "[2, 4]");
  EXPECT_INVALID("cat", ops::cat({a, z({2, 3, 1})}, 0), "rank");
  EXPECT_INVALID("cat", ops::cat({a, a}, 2), "dim 2");
  EXPECT_INVALID("cat", ops::cat({a, Tensor()}, 0), "tensor 1");
  EXPECT_INVALID("cat", ops::cat({a, elsewhere(a)}, 0), "cpu:1");
  EXPECT_INVALID("cat", ops::cat({z({}), z({})}, 0), "zero-dimensional");
  EXPECT_INVALID("cat", ops::cat({huge({kBig, 1}), huge({kBig, 1})}, 0), "overflows");
  EXPECT_INVALID("cat", ops::cat({a, ops::quantize(z({2, 32}), DType::q4_0)}, 1), "q4_0");

  EXPECT_INVALID("stack", ops::stack({}), "at least one");
  EXPECT_INVALID("stack", ops::stack({a, z({3, 2})}), "[3, 2]");
  EXPECT_INVALID("stack", ops::stack({a, a}, 3), "dim 3");

  EXPECT_INVALID("split", ops::split(a, 0, 1), "split_size");
  EXPECT_INVALID("split", ops::split(a, -2, 1), "split_size");
  EXPECT_INVALID("split", ops::split(a, std::vector<int64_t>{1, 1}, 1), "sum to 2", "size 3");
  EXPECT_INVALID("split", ops::split(a, std::vector<int64_t>{4, -1}, 1), "negative");
  EXPECT_INVALID("split", ops::split(z({}), 1, 0), "0-d");
  EXPECT_INVALID("split", ops::split(a, 1, 2), "dim 2");
}

TEST(BadInput, RepeatPadTriOneHot) {
  Tensor a = z({2, 3});
  EXPECT_INVALID("repeat", ops::repeat(a, {2}), "at least one per dim");
  EXPECT_INVALID("repeat", ops::repeat(a, {2, -1}), "negative");
  EXPECT_INVALID("repeat", ops::repeat(z({3}), {kBig}), "overflows");
  EXPECT_INVALID("repeat", ops::repeat(z({1, 1}), {int64_t{1} << 32, int64_t{1} << 32}), "overflows");

  EXPECT_INVALID("pad", ops::pad(a, {1, 2, 3}), "pairs");
  EXPECT_INVALID("pad", ops::pad(a, {1, 1, 1, 1, 1, 1}), "3 padded dims");
  EXPECT_INVALID("pad", ops::pad(a, {-2, -2}), "negative");
  EXPECT_INVALID("pad", ops::pad(z({2}, DType::i32), {1, 1}, 0.5), "0.5");
  EXPECT_INVALID("pad", ops::pad(z({2}, DType::u8), {1, 1}, 256), "256", "u8");
  EXPECT_INVALID("pad", ops::pad(z({2}, DType::i8), {1, 1}, -129), "-129");
  EXPECT_INVALID("pad", ops::pad(huge({kBig}), {kBig, kBig}), "overflows");

  EXPECT_INVALID("tril", ops::tril(z({5})), "2 dims");
  EXPECT_INVALID("triu", ops::triu(z({})), "2 dims");
  EXPECT_INVALID("triu", ops::triu(Tensor()), "undefined");

  EXPECT_INVALID("one_hot", ops::one_hot(ids({0, 3}), 3), "id 3", "size 3");
  EXPECT_INVALID("one_hot", ops::one_hot(ids({-2}), 3), "id -2");
  EXPECT_INVALID("one_hot", ops::one_hot(z({2}), 3), "i32 or i64");
  EXPECT_INVALID("one_hot", ops::one_hot(ids({1}), -5), "num_classes");
  EXPECT_INVALID("one_hot", ops::one_hot(z({0}, DType::i64), -1), "empty");
  EXPECT_INVALID("one_hot", ops::one_hot(ids({1}), 3, DType::q8_0), "q8_0");
  EXPECT_INVALID("one_hot", ops::one_hot(z({1}, DType::i64).expand({kBig}), 4), "overflows");
}

// ---------------------------------------------------------------- other families (a few each)

TEST(BadInput, Elementwise) {
  Tensor a = z({2, 3}), b = z({4, 3});
  EXPECT_INVALID("add", ops::add(a, b), "[2, 3]", "[4, 3]");
  EXPECT_INVALID("add", ops::add(a, z({3}), z({2, 4})), "[2, 4]");
  EXPECT_INVALID("add", ops::add(a, z({3}), z({2, 3}, DType::f16)), "f16");
  EXPECT_INVALID("add", ops::add(a, elsewhere(a)), "device");
  EXPECT_INVALID("add", ops::add(Tensor(), a), "undefined");
  Tensor buf = z({8});
  EXPECT_INVALID("add", ops::add(buf.narrow(0, 0, 6), z({6}), buf.narrow(0, 2, 6)), "overlap");
  EXPECT_INVALID("add", ops::add(a, z({3}), z({1, 3}).expand({2, 3})), "stride 0");
}

TEST(BadInput, Reductions) {
  Tensor x = z({2, 3, 4});
  EXPECT_INVALID("sum", ops::sum(x, {3}), "dim 3");
  EXPECT_INVALID("sum", ops::sum(x, {1, -2}), "repeated");
  EXPECT_INVALID("sum", ops::sum(x, {1}, false, z({2, 5})), "[2, 5]");
  EXPECT_INVALID("softmax", ops::softmax(x, 3), "dim 3");
  EXPECT_INVALID("softmax", ops::softmax(x, -1, z({2, 3})), "[2, 3]");
}

TEST(BadInput, LinearAlgebra) {
  EXPECT_INVALID("matmul", ops::matmul(z({2, 3}), z({4, 5})), "3", "4");
  EXPECT_INVALID("matmul", ops::matmul(z({}), z({3})), "matmul");
  EXPECT_INVALID("matmul", ops::matmul(z({2, 2, 3}), z({3, 3, 4})), "matmul");
  EXPECT_INVALID("linear", ops::linear(z({2, 8}), z({4, 7})), "8", "7");
  EXPECT_INVALID("linear", ops::linear(z({2, 8}), z({4, 8}), z({5})), "linear");
  Tensor table = z({10, 4});
  EXPECT_INVALID("embedding", ops::embedding(table, z({3})), "embedding");
  EXPECT_INVALID("embedding", ops::embedding(table, ids({1, 10})), "10");
  EXPECT_INVALID("embedding", ops::embedding(table, ids({-1})), "-1");
}

TEST(BadInput, NormsAndLlm) {
  EXPECT_INVALID("rms_norm", ops::rms_norm(z({2, 8}), z({7})), "rms_norm");
  EXPECT_INVALID("rms_norm", ops::rms_norm(z({2, 8}), z({8}), 1e-6, z({2, 7})), "[2, 7]");
  RopeParams rp;
  rp.head_dim = 8;
  rp.rotary_dim = 8;
  Tensor x = z({3, 2, 8});  // [T, H, D]
  EXPECT_INVALID("rope", ops::rope(x, ids({0, 1}), rp), "rope");
  EXPECT_INVALID("rope", ops::rope(x, z({3}), rp), "rope");
  AttentionParams ap;
  EXPECT_INVALID("attention", ops::attention(z({1, 4, 3, 8}), z({1, 3, 5, 8}), z({1, 3, 5, 8}), ap), "attention");
  EXPECT_INVALID("attention", ops::attention(z({1, 4, 3, 8}), z({1, 2, 5, 6}), z({1, 2, 5, 8}), ap), "attention");
  EXPECT_INVALID("attention", ops::attention(z({1, 4, 3, 8}), z({1, 2, 5, 8}), z({1, 2, 4, 8}), ap), "attention");
}
