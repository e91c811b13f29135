// Index / shape cases: embedding-style row selection, cat, gather, pad, tril, repeat (GQA), index_add.
// Inputs are built on the first (warm-up) run, so listing or filtering cases allocates nothing.
#include <memory>

#include "bench.h"
#include "flagos/ops.h"

namespace flagos::bench {
namespace {

// A tensor made on first use and kept for later runs.
struct Lazy {
  std::function<Tensor()> make;
  std::shared_ptr<Tensor> t = std::make_shared<Tensor>();
  const Tensor& get() const {
    if (!t->defined()) *t = make();
    return *t;
  }
};

Lazy lazy(std::function<Tensor()> f) { return Lazy{std::move(f)}; }

}  // namespace

void cases_index(std::vector<Case>& out, const Options& o) {
  const Device d = o.device;
  const auto es = [](DType t) { return static_cast<double>(element_size(t)); };

  auto add_index_select = [&](int64_t rows, int64_t cols, int64_t n, DType t) {
    // The table's values do not matter for data movement: a fill is much faster to set up than random.
    Lazy table = lazy([=] { return ops::full({rows, cols}, 0.25, t, d); });
    Lazy ids = lazy([=] { return random_tensor({n}, DType::i64, d, 0, static_cast<double>(rows), 7); });
    out.push_back({"index_select [" + std::to_string(rows) + "," + std::to_string(cols) + "] " +
                       std::string(dtype_name(t)) + " " + std::to_string(n) + " ids",
                   "index", 2.0 * static_cast<double>(n * cols) * es(t) + static_cast<double>(n) * 8, 0,
                   [=] { ops::index_select(table.get(), 0, ids.get()); }, "embedding-like row gather"});
  };
  auto add_cat = [&](int64_t rows, int64_t cols, DType t) {
    Lazy a = lazy([=] { return random_tensor({rows, cols}, t, d, -1, 1, 1); });
    Lazy b = lazy([=] { return random_tensor({rows, cols}, t, d, -1, 1, 2); });
    out.push_back({"cat [" + std::to_string(rows) + "," + std::to_string(cols) + "]x2 dim1 " + std::string(dtype_name(t)),
                   "index", 4.0 * static_cast<double>(rows * cols) * es(t), 0,
                   [=] { ops::cat({a.get(), b.get()}, 1); }, ""});
  };

  if (o.quick) {
    add_index_select(4096, 3584, 64, DType::f32);
    add_cat(64, 1792, DType::f32);
    return;
  }

  add_index_select(152064, 3584, 64, DType::bf16);
  add_index_select(152064, 3584, 1, DType::bf16);
  add_index_select(32000, 4096, 4096, DType::f16);
  add_cat(4096, 1792, DType::f32);
  add_cat(4096, 1792, DType::bf16);
  add_cat(16, 1792, DType::f32);

  {  // gather of sampled token logits: [16, vocab] -> [16, 40]
    Lazy x = lazy([=] { return random_tensor({16, 152064}, DType::f32, d); });
    Lazy idx = lazy([=] { return random_tensor({16, 40}, DType::i64, d, 0, 152064, 3); });
    out.push_back({"gather [16,152064] f32 dim1 40 ids", "index", 16.0 * 40 * (4 + 8 + 4), 0,
                   [=] { ops::gather(x.get(), 1, idx.get()); }, ""});
  }
  {  // pad a prefill batch by 64 rows, and the last dim of a [tokens, heads, head_dim] tensor
    Lazy x = lazy([=] { return random_tensor({4096, 3584}, DType::f32, d); });
    out.push_back({"pad [4096,3584] f32 (0,0,0,64)", "index", (4096.0 * 3584 * 2 + 64.0 * 3584) * 4, 0,
                   [=] { ops::pad(x.get(), {0, 0, 0, 64}, 0.0); }, ""});
    Lazy h = lazy([=] { return random_tensor({4096, 28, 128}, DType::bf16, d); });
    out.push_back({"pad [4096,28,128] bf16 (0,16)", "index", 4096.0 * 28 * (128 + 144) * 2, 0,
                   [=] { ops::pad(h.get(), {0, 16}, 0.0); }, ""});
  }
  {  // causal mask / triangular matrices (16.7M elements: the generic large case)
    Lazy x = lazy([=] { return random_tensor({4096, 4096}, DType::f32, d); });
    out.push_back({"tril [4096,4096] f32", "index", 4096.0 * 4096 * 4 * 1.5, 0, [=] { ops::tril(x.get()); }, ""});
    out.push_back({"triu [4096,4096] f32 diag1", "index", 4096.0 * 4096 * 4 * 1.5, 0,
                   [=] { ops::triu(x.get(), 1); }, ""});
  }
  {  // GQA: 4 kv heads repeated to 28 q heads
    Lazy kv = lazy([=] { return random_tensor({4, 1, 4096, 128}, DType::bf16, d); });
    out.push_back({"repeat [4,1,4096,128] bf16 (1,7,1,1)", "index", 4.0 * 4096 * 128 * 2 * 8, 0,
                   [=] { ops::repeat(kv.get(), {1, 7, 1, 1}); }, "GQA kv head expansion"});
  }
  {  // scatter-style accumulation: 4096 rows added into a [4096, 3584] f32 buffer
    Lazy x = lazy([=] { return random_tensor({4096, 3584}, DType::f32, d); });
    Lazy src = lazy([=] { return random_tensor({4096, 3584}, DType::f32, d); });
    Lazy idx = lazy([=] { return random_tensor({4096}, DType::i64, d, 0, 4096, 5); });
    out.push_back({"index_add [4096,3584] f32 4096 ids", "index", 4096.0 * 3584 * 4 * 4, 4096.0 * 3584 * 2,
                   [=] { ops::index_add(x.get(), 0, idx.get(), src.get()); }, "includes the copy of x"});
  }
}

}  // namespace flagos::bench
