// `flagos tune ops` (see tune.h). For each family and representative shape: the heuristic's output
// is the reference; every candidate config runs once and must match it (else it is reported and
// never chosen), then is timed with device events (warm-up, median of repeats; for the GEMV the L2
// cache is flushed before each repeat, as decode streams weights that are not cached). A table
// entry is written when the best candidate beats the heuristic by >= 3%.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "bench.h"
#include "flagos/backend.h"
#include "flagos/error.h"
#include "flagos/ops.h"
#include "flagos/tuning.h"
#include "tune.h"

namespace flagos::bench {
namespace {

namespace ft = flagos::tuning;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string ints_str(const ft::Ints& v, const std::vector<std::string>& names) {
  std::string r;
  for (int i = 0; i < v.n; ++i)
    r += detail::concat(i ? " " : "", i < static_cast<int>(names.size()) ? names[static_cast<size_t>(i)] : "?", "=", v[i]);
  return r;
}

nlohmann::json ints_json(const ft::Ints& v, const std::vector<std::string>& names) {
  nlohmann::json j = nlohmann::json::object();
  for (int i = 0; i < v.n && i < static_cast<int>(names.size()); ++i) j[names[static_cast<size_t>(i)]] = v[i];
  return j;
}

// One shape of a family: the family's shape ints, a label, bytes moved per run, the run and its
// output tensor (on the device).
struct Problem {
  ft::Ints shape;
  std::string label;
  double bytes = 0;
  bool flush_l2 = false;
  double rel_tol = 0, abs_tol_of_rms = 0;
  std::function<void()> run;
  Tensor out;
};

// The heuristic's output as f32 on the device and the absolute tolerance derived from its RMS.
struct Reference {
  Tensor ref, tol;  // tol = rel_tol * |ref| + abs_tol
};

Reference make_reference(const Problem& pb) {
  Reference r;
  r.ref = ops::cast(pb.out, DType::f32).clone();
  const double n = static_cast<double>(std::max<int64_t>(1, r.ref.numel()));
  const double rms = static_cast<double>(ops::norm(r.ref).to(Device::cpu()).data_as<float>()[0]) / std::sqrt(n);
  r.tol = ops::add(ops::mul(ops::abs(r.ref), pb.rel_tol), pb.abs_tol_of_rms * rms);
  return r;
}

// "" when the problem's output matches the reference within tolerance (compared on the device;
// NaN never passes), else the first mismatch.
std::string compare(const Problem& pb, const Reference& r) {
  const Tensor got = ops::cast(pb.out, DType::f32);
  const Tensor ok = ops::le(ops::abs(ops::sub(got, r.ref)), r.tol);  // false for NaN
  if (ops::cast(ops::all(ok), DType::f32).to(Device::cpu()).data_as<float>()[0] != 0) return "";
  const Tensor g = got.to(Device::cpu()).contiguous(), e = r.ref.to(Device::cpu()).contiguous(),
               t = r.tol.to(Device::cpu()).contiguous();
  for (int64_t i = 0; i < g.numel(); ++i) {
    const float gv = g.data_as<float>()[i], ev = e.data_as<float>()[i], tv = t.data_as<float>()[i];
    if (!(std::fabs(gv - ev) <= tv))
      return detail::concat("element ", i, ": ", gv, " vs ", ev, " (tolerance ", tv, ")");
  }
  return "mismatch";
}

class Timer {
 public:
  Timer(Device dev, int reps) : dev_(dev) {
    for (int i = 0; i < reps; ++i) {
      start_.push_back(std::make_unique<Event>(dev));
      stop_.push_back(std::make_unique<Event>(dev));
    }
    flush_ = Tensor::empty({256ll << 20}, DType::u8, dev);
  }
  // Median seconds of one run.
  double time(const Problem& pb, int warm) {
    for (int i = 0; i < warm; ++i) pb.run();
    const Stream s = current_stream(dev_);
    for (size_t i = 0; i < start_.size(); ++i) {
      if (pb.flush_l2)
        backend_of(dev_).memset(dev_.index, flush_.data(), static_cast<int>(i & 0x7f), static_cast<size_t>(flush_.nbytes()),
                                s.handle());
      start_[i]->record(s);
      pb.run();
      stop_[i]->record(s);
    }
    stop_.back()->synchronize();
    std::vector<double> t;
    for (size_t i = 0; i < start_.size(); ++i) t.push_back(stop_[i]->elapsed_ms_since(*start_[i]) * 1e-3);
    std::nth_element(t.begin(), t.begin() + static_cast<long>(t.size() / 2), t.end());
    return t[t.size() / 2];
  }

 private:
  Device dev_;
  std::vector<std::unique_ptr<Event>> start_, stop_;
  Tensor flush_;
};

// ---------------------------------------------------------------- problems per family

struct Inputs {
  Tensor wbuf;   // bf16 weights, sliced per shape
  Tensor xbuf;   // bf16 activations
  Tensor sbuf4;  // f32 logits
  Tensor sbuf2;  // bf16 logits
};

// (N, K) of the linear layers of LLMs with hidden 896 .. 8192: qkv (stacked q/k/v), o, gate or
// up alone, stacked gate/up (the engine's fused projection), down, lm_head.
std::vector<std::pair<int64_t, int64_t>> gemv_nk(bool quick) {
  struct M {
    int64_t hidden, qkv, inter, vocab;
  };
  const std::vector<M> models = quick ? std::vector<M>{{896, 1152, 4864, 0}}
                                      : std::vector<M>{{896, 1152, 4864, 151936},     // Qwen2.5-0.5B
                                                       {2048, 2560, 11008, 151936},   // Qwen2.5-3B
                                                       {3584, 4608, 18944, 152064},   // Qwen2.5-7B
                                                       {4096, 6144, 14336, 128256},   // Llama 3 8B
                                                       {8192, 10240, 29568, 0}};      // 70B class (no lm_head: 2.5 GB)
  std::vector<std::pair<int64_t, int64_t>> nk;
  for (const M& m : models) {
    nk.push_back({m.qkv, m.hidden});
    nk.push_back({m.hidden, m.hidden});
    nk.push_back({m.inter, m.hidden});
    nk.push_back({2 * m.inter, m.hidden});
    nk.push_back({m.hidden, m.inter});
    if (m.vocab) nk.push_back({m.vocab, m.hidden});
  }
  return nk;
}

std::vector<Problem> gemv_problems(Inputs& in, Device dev, bool quick) {
  const auto nk = gemv_nk(quick);
  int64_t wmax = 0, kmax = 0;
  for (auto [n, k] : nk) wmax = std::max(wmax, n * k), kmax = std::max(kmax, k);
  const std::vector<int64_t> ms = quick ? std::vector<int64_t>{1, 4} : std::vector<int64_t>{1, 2, 4, 8};
  in.wbuf = random_tensor({wmax}, DType::bf16, dev, -1, 1, 21);
  in.xbuf = random_tensor({8 * kmax}, DType::bf16, dev, -1, 1, 22);
  std::vector<Problem> out;
  for (int64_t m : ms)
    for (auto [n, k] : nk) {
      Problem pb;
      pb.shape = ft::Ints{m, n, k};
      pb.label = detail::concat("linear bf16 [", m, ",", k, "]x[", n, ",", k, "]^T");
      pb.bytes = 2.0 * static_cast<double>(n * k + m * k + m * n);
      pb.flush_l2 = true;
      pb.rel_tol = 1.0 / 128;       // a bf16 rounding flip of the output
      pb.abs_tol_of_rms = 1e-3;     // f32 sums in another order
      Tensor x = in.xbuf.narrow(0, 0, m * k).view({m, k});
      Tensor w = in.wbuf.narrow(0, 0, n * k).view({n, k});
      Tensor y = Tensor::empty({m, n}, DType::bf16, dev);
      pb.run = [x, w, y] { ops::linear(x, w, {}, y); };
      pb.out = y;
      out.push_back(std::move(pb));
    }
  return out;
}

std::vector<Problem> softmax_problems(Inputs& in, Device dev, bool quick) {
  const std::vector<int64_t> ns = quick ? std::vector<int64_t>{32000} : std::vector<int64_t>{32000, 128256, 152064, 262144};
  const std::vector<int64_t> rows = quick ? std::vector<int64_t>{1, 16} : std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64};
  const int64_t nmax = *std::max_element(ns.begin(), ns.end()), rmax = *std::max_element(rows.begin(), rows.end());
  in.sbuf4 = random_tensor({rmax * nmax}, DType::f32, dev, -8, 8, 23);
  in.sbuf2 = ops::cast(in.sbuf4, DType::bf16);
  std::vector<Problem> out;
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t r : rows)
      for (int64_t n : ns) {
        Problem pb;
        const int64_t es = static_cast<int64_t>(element_size(dt));
        pb.shape = ft::Ints{es, r, n};
        pb.label = detail::concat("softmax ", dtype_name(dt), " [", r, ",", n, "]");
        pb.bytes = 2.0 * static_cast<double>(r * n * es);
        pb.rel_tol = dt == DType::f32 ? 5e-5 : 1.0 / 128;  // f32: sums of ~1e5 terms in another order
        pb.abs_tol_of_rms = 1e-6;
        Tensor x = (dt == DType::f32 ? in.sbuf4 : in.sbuf2).narrow(0, 0, r * n).view({r, n});
        Tensor y = Tensor::empty({r, n}, dt, dev);
        pb.run = [x, y] { ops::softmax(x, -1, y); };
        pb.out = y;
        out.push_back(std::move(pb));
      }
  return out;
}

std::vector<Problem> problems_for(const std::string& family, Inputs& in, Device dev, bool quick) {
  if (family == "gemv") return gemv_problems(in, dev, quick);
  if (family == "softmax") return softmax_problems(in, dev, quick);
  fail("flagos tune ops: no shapes for kernel family '", family, "'");
}

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

}  // namespace

int run_tune(const TuneOptions& o) {
  const double t_start = now_s();
  if (o.device.is_cpu()) fail("flagos tune ops: the CPU backend has no launch tables (use --device cuda)");
  const ft::Tunables* tun = ft::tunables(o.device.backend);
  if (!tun || tun->families.empty())
    fail("flagos tune ops: backend '", backend_of(o.device).name(), "' has no tunable kernel families");
  std::vector<const ft::Family*> fams;
  for (const ft::Family& f : tun->families)
    if (o.families.empty() || std::find(o.families.begin(), o.families.end(), f.name) != o.families.end())
      fams.push_back(&f);
  for (const std::string& want : o.families) {
    bool found = false;
    for (const ft::Family& f : tun->families) found = found || f.name == want;
    if (!found) {
      std::string known;
      for (const ft::Family& f : tun->families) known += (known.empty() ? "" : ", ") + f.name;
      fail("flagos tune ops: unknown kernel family '", want, "' (this backend has: ", known, ")");
    }
  }
  const Device dev = o.device;
  const DeviceProps props = backend_of(dev).device_props(dev.index);
  const std::string arch = tun->arch(dev.index);
  std::printf("flagos tune ops: %s (%s, %s), %s\n", to_string(dev).c_str(), props.name.c_str(), arch.c_str(),
              today().c_str());
  std::printf("each candidate: checked against the heuristic's output, then median of repeats (CUDA events)\n");
  std::fflush(stdout);

  ft::Table table;
  table.set_arch(arch);
  nlohmann::json jrows = nlohmann::json::array();
  int bad = 0, entries = 0;
  Inputs in;
  for (const ft::Family* fam : fams) {
    const bool gemv = fam->name == "gemv";
    Timer timer(dev, gemv ? 10 : 20);
    const int warm = gemv ? 2 : 3;
    std::vector<Problem> pbs = problems_for(fam->name, in, dev, o.quick);
    std::set<ft::Key> seen;
    std::vector<const Problem*> todo;
    for (const Problem& pb : pbs)
      if (seen.insert(fam->bucket(pb.shape)).second) todo.push_back(&pb);
    std::printf("\n== %s (%zu shapes)\n%s\n", fam->name.c_str(), todo.size(), fam->description.c_str());
    std::printf("%-8s %-40s %-28s %10s %-28s %10s %8s %9s\n", "", "shape", "key", "default", "best config", "best",
                "speedup", "GB/s");
    std::fflush(stdout);
    size_t idx = 0;
    for (const Problem* pb : todo) {
      ++idx;
      const ft::Key key = fam->bucket(pb->shape);
      const ft::Config heur = fam->heuristic(dev.index, pb->shape);
      Reference ref;
      double t_def = 0;
      {
        ft::ForceConfig use_heuristic(fam->name, ft::Config{});
        pb->run();
        ref = make_reference(*pb);
        t_def = timer.time(*pb, warm);
      }
      ft::Config best = heur;
      double t_best = t_def;
      nlohmann::json jc = nlohmann::json::array();
      for (const ft::Config& c : fam->space(dev.index, pb->shape)) {
        ft::ForceConfig force(fam->name, c);
        std::string err;
        double t = 0;
        try {
          Tensor poisoned = pb->out;  // a config must write every element
          ops::fill(poisoned, NAN);
          pb->run();
          err = compare(*pb, ref);
          if (err.empty()) t = timer.time(*pb, warm);
        } catch (const std::exception& e) {
          err = e.what();
        }
        if (!err.empty()) {
          ++bad;
          std::printf("  %s %s: candidate %s REJECTED: %s\n", fam->name.c_str(), pb->label.c_str(),
                      ints_str(c, fam->param_names).c_str(), err.c_str());
          jc.push_back({{"config", ints_json(c, fam->param_names)}, {"error", err}});
          continue;
        }
        jc.push_back({{"config", ints_json(c, fam->param_names)}, {"time_us", t * 1e6}});
        if (t < t_best) t_best = t, best = c;
      }
      const bool write = !(best == heur) && t_best < 0.97 * t_def;
      if (write) {
        table.set(fam->name, key, best);
        ++entries;
      } else {
        best = heur, t_best = t_def;
      }
      std::printf("[%3zu/%3zu] %-40s %-28s %8.2fus %-28s %8.2fus %7.2fx %9.1f\n", idx, todo.size(), pb->label.c_str(),
                  ints_str(key, fam->key_names).c_str(), t_def * 1e6,
                  (ints_str(best, fam->param_names) + (write ? "" : " (=)")).c_str(), t_best * 1e6, t_def / t_best,
                  pb->bytes / t_best / 1e9);
      std::fflush(stdout);
      jrows.push_back({{"family", fam->name},
                       {"shape", pb->label},
                       {"key", ints_json(key, fam->key_names)},
                       {"heuristic", ints_json(heur, fam->param_names)},
                       {"default_us", t_def * 1e6},
                       {"best", ints_json(best, fam->param_names)},
                       {"best_us", t_best * 1e6},
                       {"speedup", t_def / t_best},
                       {"best_gbps", pb->bytes / t_best / 1e9},
                       {"table_entry", write},
                       {"candidates", jc}});
    }
  }
  std::vector<ft::Family> fam_list;
  for (const ft::Family* f : fams) fam_list.push_back(*f);
  const std::string text = table.format(
      fam_list, detail::concat("Launch table for ", arch, ", made by `flagos tune ops` on ", props.name, " (",
                               to_string(dev), "), ", today(), ".\nShapes without an entry use the built-in heuristic; "
                               "see docs/perf/cuda.md."));
  std::printf("\n%d table entries (configs >= 3%% faster than the heuristic); %d rejected candidates; %.1f s\n", entries,
              bad, now_s() - t_start);
  if (!o.out.empty()) {
    ft::Table::parse(text, o.out).validate(fam_list);  // what we write must load
    std::ofstream f(o.out);
    if (!f) fail("flagos tune ops: cannot write ", o.out);
    f << text;
    if (!f) fail("flagos tune ops: write error on ", o.out);
    std::printf("wrote %s\n", o.out.c_str());
  } else {
    std::printf("\n%s", text.c_str());
  }
  if (!o.json.empty()) {
    nlohmann::json j = {{"device", to_string(dev)}, {"device_name", props.name}, {"arch", arch},
                        {"date", today()},          {"table", text},             {"rows", jrows},
                        {"rejected", bad},          {"seconds", now_s() - t_start}};
    std::ofstream f(o.json);
    if (!f) fail("flagos tune ops: cannot write ", o.json);
    f << j.dump(2) << "\n";
    std::printf("wrote %s\n", o.json.c_str());
  }
  return bad ? 1 : 0;
}

}  // namespace flagos::bench
