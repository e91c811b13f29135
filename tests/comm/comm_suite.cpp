// The correctness suite (see comm_suite.h). Inputs are a hash of (case, rank, index) kept in ranges
// where every reduction over up to 5 ranks is exact for integers and finite for floats; outputs start
// poisoned; references are computed in float64 with per-dtype tolerances (0 for data movement).
#include "comm_suite.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm_values.h"

namespace comm_test {

int g_rank = 0, g_n = 1, g_pass = 0, g_fail = 0;

namespace {

Memory* g_mem = nullptr;

#define CHECK_OK(call)                                                                                    \
  do {                                                                                                    \
    const flagosResult_t r_ = (call);                                                                     \
    if (r_ != flagosSuccess) {                                                                            \
      std::fprintf(stderr, "FATAL %s:%d %s: %s: %s\n", __FILE__, __LINE__, #call, flagosGetErrorString(r_), \
                   flagosGetLastError(nullptr));                                                          \
      std::exit(3);                                                                                       \
    }                                                                                                     \
  } while (0)

struct TypeDesc { const char* name; flagosDataType_t t; size_t size; bool is_float; bool is_signed; };
const TypeDesc kTypes[] = {{"i8", flagosInt8, 1, false, true},      {"u8", flagosUint8, 1, false, false},
                           {"i32", flagosInt32, 4, false, true},    {"u32", flagosUint32, 4, false, false},
                           {"i64", flagosInt64, 8, false, true},    {"u64", flagosUint64, 8, false, false},
                           {"f16", flagosFloat16, 2, true, true},   {"bf16", flagosBfloat16, 2, true, true},
                           {"f32", flagosFloat32, 4, true, true},   {"f64", flagosFloat64, 8, true, true}};
const char* kOpNames[] = {"sum", "prod", "max", "min", "avg"};

using flagos::comm::bench::load;
using flagos::comm::bench::store;

uint64_t mix(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
  return x;
}

// Input element i of rank r for a case (salt), already representable in the dtype.
double input(const TypeDesc& td, int op, uint64_t salt, int r, size_t i) {
  const uint64_t h = mix(salt * 1000003u + static_cast<uint64_t>(r) * 7919u + i);
  double v;
  if (td.is_float) {
    v = op == flagosProd ? 0.5 + static_cast<double>(h % 97) / 64.0 : (static_cast<double>(h % 2001) - 1000.0) / 64.0;
  } else if (op == flagosProd) {
    v = td.is_signed ? static_cast<double>(h % 5) - 2 : static_cast<double>(h % 3);
  } else {
    const int range = td.size == 1 ? 20 : 1000;
    v = td.is_signed ? static_cast<double>(h % (2 * range + 1)) - range : static_cast<double>(h % (range + 1));
  }
  char tmp[8];
  store(tmp, 0, td.t, v);
  return load(tmp, 0, td.t);
}

struct Case {
  const char* coll;
  const TypeDesc* td;
  int op;  // -1: none
  size_t count;
  bool in_place;
  int root;
  std::string name() const {
    char b[200];
    std::snprintf(b, sizeof(b), "%s dtype=%s op=%s count=%zu %s root=%d nranks=%d rank=%d", coll, td->name,
                  op >= 0 ? kOpNames[op] : "-", count, in_place ? "in-place" : "out-of-place", root, g_n, g_rank);
    return b;
  }
};

// Reduction over ranks of element i (float64 reference) and its tolerance.
void reference(const TypeDesc& td, int op, uint64_t salt, size_t i, double& ref, double& tol) {
  double acc = input(td, op, salt, 0, i), mag = std::fabs(acc);
  for (int r = 1; r < g_n; ++r) {
    const double x = input(td, op, salt, r, i);
    mag += std::fabs(x);
    if (op == flagosSum || op == flagosAvg) acc += x;
    else if (op == flagosProd) acc *= x;
    else if (op == flagosMax) acc = std::max(acc, x);
    else acc = std::min(acc, x);
  }
  if (op == flagosAvg) acc = td.is_float ? acc / g_n : std::trunc(acc / g_n);
  double eps = 0;
  if (td.t == flagosFloat16) eps = std::ldexp(1.0, -10);
  else if (td.t == flagosBfloat16) eps = std::ldexp(1.0, -7);
  else if (td.t == flagosFloat32) eps = std::ldexp(1.0, -22);
  else if (td.t == flagosFloat64) eps = std::ldexp(1.0, -50);
  if (op == flagosProd) mag = std::fabs(acc);
  if (op == flagosMax || op == flagosMin) mag = 0;
  ref = acc;
  tol = eps * (g_n + 1) * mag;
}

bool compare(const Case& c, const void* got, size_t n, const std::function<void(size_t, double&, double&)>& want) {
  for (size_t i = 0; i < n; ++i) {
    double ref, tol;
    want(i, ref, tol);
    const double g = load(got, i, c.td->t);
    if (!(std::fabs(g - ref) <= tol)) {
      std::printf("FAIL %s: element %zu is %.17g, expected %.17g (tolerance %.3g)\n", c.name().c_str(), i, g, ref, tol);
      ++g_fail;
      return false;
    }
  }
  ++g_pass;
  return true;
}

// A buffer on the rank's memory with a host mirror, both poisoned at first. Tests write inputs into
// the mirror (h), up() copies it to the device (d), down() copies results back.
class Buf {
 public:
  Buf(size_t elems, size_t es) : v_(elems * es + 8, static_cast<char>(0x5a)) {
    d_ = g_mem->host() ? v_.data() : static_cast<char*>(g_mem->alloc(v_.size()));
    up();
  }
  ~Buf() {
    if (!g_mem->host()) g_mem->release(d_);
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  char* h() { return v_.data(); }
  char* d() { return d_; }
  char* d_at(size_t i, size_t es) { return d_ + i * es; }
  char* h_at(size_t i, size_t es) { return v_.data() + i * es; }
  void up() {
    if (!g_mem->host()) g_mem->upload(d_, v_.data(), v_.size());
  }
  void down() {
    g_mem->synchronize();
    if (!g_mem->host()) g_mem->download(v_.data(), d_, v_.size());
  }

 private:
  std::vector<char> v_;
  char* d_ = nullptr;
};

void check_rc(const Case& c, flagosResult_t r) {
  if (r != flagosSuccess) {
    std::printf("FAIL %s: %s: %s\n", c.name().c_str(), flagosGetErrorString(r), flagosGetLastError(nullptr));
    std::exit(3);  // the communicator may be broken: stop here
  }
}

void exact_from(const TypeDesc& td, uint64_t salt, int r, size_t i, double& ref, double& tol) {
  ref = input(td, 0, salt, r, i);
  tol = 0;
}

}  // namespace

void run_suite(flagosComm_t comm, Memory& mem) {
  g_mem = &mem;
  void* st = mem.stream();
  const std::vector<size_t> small = {0, 1, 7, 13, 1021};
  uint64_t salt = 1;
  const size_t n = static_cast<size_t>(g_n), me = static_cast<size_t>(g_rank);
  for (const TypeDesc& td : kTypes) {
    const size_t es = td.size;
    std::vector<size_t> sizes = small;
    if (td.t == flagosFloat32 || td.t == flagosBfloat16 || td.t == flagosInt64) sizes.push_back(65537);
    for (size_t count : sizes) {
      for (bool ip : {false, true}) {
        // ---- reductions ----
        for (int op = 0; op < flagosNumOps; ++op) {
          const flagosRedOp_t rop = static_cast<flagosRedOp_t>(op);
          {  // all-reduce
            ++salt;
            Case c{"AllReduce", &td, op, count, ip, -1};
            Buf s(count, es), r(count, es);
            Buf& in = ip ? r : s;
            for (size_t i = 0; i < count; ++i) store(in.h(), i, td.t, input(td, op, salt, g_rank, i));
            in.up();
            check_rc(c, flagosAllReduce(in.d(), r.d(), count, td.t, rop, comm, st));
            r.down();
            compare(c, r.h(), count, [&](size_t i, double& ref, double& tol) { reference(td, op, salt, i, ref, tol); });
          }
          {  // reduce
            ++salt;
            const int root = static_cast<int>((count + salt) % n);
            Case c{"Reduce", &td, op, count, ip, root};
            Buf s(count, es), r(count, es);
            Buf& in = ip ? r : s;
            for (size_t i = 0; i < count; ++i) store(in.h(), i, td.t, input(td, op, salt, g_rank, i));
            in.up();
            check_rc(c, flagosReduce(in.d(), r.d(), count, td.t, rop, root, comm, st));
            r.down();
            if (g_rank == root)
              compare(c, r.h(), count, [&](size_t i, double& ref, double& tol) { reference(td, op, salt, i, ref, tol); });
          }
          {  // reduce-scatter: in place means recvbuff = sendbuff + rank * count
            ++salt;
            Case c{"ReduceScatter", &td, op, count, ip, -1};
            Buf s(count * n, es), r(count, es);
            for (size_t i = 0; i < count * n; ++i) store(s.h(), i, td.t, input(td, op, salt, g_rank, i));
            s.up();
            check_rc(c, flagosReduceScatter(s.d(), ip ? s.d_at(me * count, es) : r.d(), count, td.t, rop, comm, st));
            Buf& out = ip ? s : r;
            out.down();
            compare(c, ip ? s.h_at(me * count, es) : r.h(), count,
                    [&](size_t i, double& ref, double& tol) { reference(td, op, salt, me * count + i, ref, tol); });
          }
        }
        {  // broadcast
          ++salt;
          const int root = static_cast<int>((count * 3 + salt) % n);
          Case c{"Broadcast", &td, -1, count, ip, root};
          Buf s(count, es), r(count, es);
          Buf& in = ip ? r : s;
          if (g_rank == root)
            for (size_t i = 0; i < count; ++i) store(in.h(), i, td.t, input(td, 0, salt, root, i));
          in.up();
          check_rc(c, flagosBroadcast(in.d(), r.d(), count, td.t, root, comm, st));
          r.down();
          compare(c, r.h(), count, [&](size_t i, double& ref, double& tol) { exact_from(td, salt, root, i, ref, tol); });
        }
        {  // all-gather: in place means sendbuff = recvbuff + rank * count
          ++salt;
          Case c{"AllGather", &td, -1, count, ip, -1};
          Buf s(count, es), r(count * n, es);
          char* in_h = ip ? r.h_at(me * count, es) : s.h();
          for (size_t i = 0; i < count; ++i) store(in_h, i, td.t, input(td, 0, salt, g_rank, i));
          (ip ? r : s).up();
          check_rc(c, flagosAllGather(ip ? r.d_at(me * count, es) : s.d(), r.d(), count, td.t, comm, st));
          r.down();
          compare(c, r.h(), count * n, [&](size_t i, double& ref, double& tol) {
            exact_from(td, salt, static_cast<int>(i / count), i % count, ref, tol); });
        }
        {  // all-to-all: block p of rank q's input lands at block q of rank p
          ++salt;
          Case c{"AlltoAll", &td, -1, count, ip, -1};
          Buf s(count * n, es), r(count * n, es);
          Buf& in = ip ? r : s;
          for (size_t i = 0; i < count * n; ++i) store(in.h(), i, td.t, input(td, 0, salt, g_rank, i));
          in.up();
          check_rc(c, flagosAlltoAll(in.d(), r.d(), count, td.t, comm, st));
          r.down();
          compare(c, r.h(), count * n, [&](size_t i, double& ref, double& tol) {
            exact_from(td, salt, static_cast<int>(i / count), me * count + i % count, ref, tol); });
        }
        {  // all-to-all-v: rank q sends c(q,p) elements to p, with gaps between blocks
          ++salt;
          Case c{"AlltoAllv", &td, -1, count, ip, -1};
          auto cnt = [&](size_t q, size_t p) { return (q * 3 + p * 5 + count) % 7 + (count > 100 ? count / 8 : 0); };
          std::vector<size_t> sc(n), sd(n), rc(n), rd(n);
          size_t so = 0, ro = 0;
          for (size_t p = 0; p < n; ++p) {
            sc[p] = cnt(me, p); sd[p] = so; so += sc[p] + 1;
            rc[p] = cnt(p, me); rd[p] = ro; ro += rc[p] + 1;
          }
          const size_t total = std::max(so, ro);
          Buf s(total, es), r(total, es);
          Buf& in = ip ? r : s;
          for (size_t i = 0; i < so; ++i) store(in.h(), i, td.t, input(td, 0, salt, g_rank, i));
          in.up();
          check_rc(c, flagosAlltoAllv(in.d(), sc.data(), sd.data(), r.d(), rc.data(), rd.data(), td.t, comm, st));
          r.down();
          bool ok = true;
          for (size_t p = 0; p < n && ok; ++p) {
            // Rank p placed its block for me at its own sdispl for me.
            size_t psd = 0;
            for (size_t q = 0; q < me; ++q) psd += cnt(p, q) + 1;
            for (size_t i = 0; i < rc[p] && ok; ++i) {
              const double g = load(r.h(), rd[p] + i, td.t), want = input(td, 0, salt, static_cast<int>(p), psd + i);
              if (g != want) {
                std::printf("FAIL %s: from rank %zu element %zu is %.17g, expected %.17g\n", c.name().c_str(), p, i, g, want);
                ok = false;
              }
            }
          }
          ok ? ++g_pass : ++g_fail;
        }
        {  // gather: in place means sendbuff = recvbuff + root * count on the root
          ++salt;
          const int root = static_cast<int>((count + 2 * salt) % n);
          Case c{"Gather", &td, -1, count, ip, root};
          Buf s(count * n, es), r(count * n, es);  // s: n blocks so the in-place variant can use it alike
          const bool inside = ip && g_rank == root;
          char* in_h = inside ? r.h_at(me * count, es) : s.h();
          for (size_t i = 0; i < count; ++i) store(in_h, i, td.t, input(td, 0, salt, g_rank, i));
          (inside ? r : s).up();
          check_rc(c, flagosGather(inside ? r.d_at(me * count, es) : s.d(), r.d(), count, td.t, root, comm, st));
          r.down();
          if (g_rank == root)
            compare(c, r.h(), count * n, [&](size_t i, double& ref, double& tol) {
              exact_from(td, salt, static_cast<int>(i / count), i % count, ref, tol); });
        }
        {  // scatter: in place means recvbuff = sendbuff + root * count on the root
          ++salt;
          const int root = static_cast<int>((count + 5 * salt) % n);
          Case c{"Scatter", &td, -1, count, ip, root};
          Buf s(count * n, es), r(count, es);
          if (g_rank == root)
            for (size_t i = 0; i < count * n; ++i) store(s.h(), i, td.t, input(td, 0, salt, root, i));
          s.up();
          const bool inside = ip && g_rank == root;
          check_rc(c, flagosScatter(s.d(), inside ? s.d_at(me * count, es) : r.d(), count, td.t, root, comm, st));
          (inside ? s : r).down();
          compare(c, inside ? s.h_at(me * count, es) : r.h(), count, [&](size_t i, double& ref, double& tol) {
            exact_from(td, salt, root, me * count + i, ref, tol); });
        }
      }
    }
  }
  {  // large all-reduces (beyond the host adaptor's 1 MiB in-place copy threshold), repeated so pooled
     // buffers get reused
    for (const TypeDesc* td : {&kTypes[8], &kTypes[7]})
      for (int op : {flagosSum, flagosAvg})
        for (bool ip : {true, false, true}) {
          ++salt;
          const size_t count = 300007;
          Case c{"AllReduce large", td, op, count, ip, -1};
          Buf s(count, td->size), r(count, td->size);
          Buf& in = ip ? r : s;
          for (size_t i = 0; i < count; ++i) store(in.h(), i, td->t, input(*td, op, salt, g_rank, i));
          in.up();
          check_rc(c, flagosAllReduce(in.d(), r.d(), count, td->t, static_cast<flagosRedOp_t>(op), comm, st));
          r.down();
          compare(c, r.h(), count, [&](size_t i, double& ref, double& tol) { reference(*td, op, salt, i, ref, tol); });
        }
  }
  {  // send/recv ring in a group (one at a time would deadlock for large messages), plus a barrier
    for (size_t count : {size_t(0), size_t(1), size_t(100003)}) {
      ++salt;
      const TypeDesc& td = kTypes[8];
      Case c{"Send/Recv ring", &td, -1, count, false, -1};
      Buf s(count, 4), r(count, 4);
      for (size_t i = 0; i < count; ++i) store(s.h(), i, td.t, input(td, 0, salt, g_rank, i));
      s.up();
      const int to = (g_rank + 1) % g_n, from = (g_rank + g_n - 1) % g_n;
      CHECK_OK(flagosGroupStart());
      CHECK_OK(flagosSend(s.d(), count, td.t, to, comm, st));
      CHECK_OK(flagosRecv(r.d(), count, td.t, from, comm, st));
      check_rc(c, flagosGroupEnd());
      r.down();
      compare(c, r.h(), count, [&](size_t i, double& ref, double& tol) { exact_from(td, salt, from, i, ref, tol); });
    }
    CHECK_OK(flagosBarrier(comm, st));
    mem.synchronize();
    ++g_pass;
  }
  {  // several collectives fused in one group
    ++salt;
    const TypeDesc& td = kTypes[8];
    Case c{"group of 3 AllReduce", &td, 0, 333, false, -1};
    std::vector<std::unique_ptr<Buf>> s, r;
    for (int k = 0; k < 3; ++k) {
      s.push_back(std::make_unique<Buf>(333, 4));
      r.push_back(std::make_unique<Buf>(333, 4));
      for (size_t i = 0; i < 333; ++i) store(s[k]->h(), i, td.t, input(td, 0, salt + k, g_rank, i));
      s[k]->up();
    }
    CHECK_OK(flagosGroupStart());
    for (int k = 0; k < 3; ++k) CHECK_OK(flagosAllReduce(s[k]->d(), r[k]->d(), 333, td.t, flagosSum, comm, st));
    check_rc(c, flagosGroupEnd());
    for (int k = 0; k < 3; ++k) {
      r[k]->down();
      compare(c, r[k]->h(), 333, [&](size_t i, double& ref, double& tol) { reference(td, 0, salt + k, i, ref, tol); });
    }
  }
}

namespace {

void expect_error(const char* what, flagosResult_t got, flagosResult_t want, const char* needle) {
  const std::string msg = flagosGetLastError(nullptr);
  if (got == want && msg.find(needle) != std::string::npos) {
    ++g_pass;
  } else {
    std::printf("FAIL %s (rank %d of %d): got %s (%s), expected %s mentioning '%s'\n", what, g_rank, g_n,
                flagosGetErrorString(got), msg.c_str(), flagosGetErrorString(want), needle);
    ++g_fail;
  }
}

}  // namespace

void run_errors(flagosComm_t world, Memory& mem, const char* device) {
  g_mem = &mem;
  void* st = mem.stream();
  Buf x(16, 4);
  expect_error("bad dtype", flagosAllReduce(x.d(), x.d(), 1, static_cast<flagosDataType_t>(42), flagosSum, world, st),
               flagosInvalidArgument, "datatype 42");
  expect_error("bad root", flagosBroadcast(x.d(), x.d(), 1, flagosFloat32, g_n, world, st), flagosInvalidArgument, "root");
  expect_error("null buffer", flagosAllReduce(nullptr, x.d(), 3, flagosFloat32, flagosSum, world, st),
               flagosInvalidArgument, "sendbuff is null");

  // Ranks disagreeing on a collective's arguments are a clear error by default (no FLAGOS_COMM_CHECK)
  // where the check is one small host exchange: the host and heterogeneous modes (not NCCL alone).
  {
    char winfo[512];
    CHECK_OK(flagosCommRankInfo(world, g_rank, winfo, sizeof(winfo)));
    const char* env = std::getenv("FLAGOS_COMM_CHECK");
    const bool cheap = std::strstr(winfo, "mode host") || std::strstr(winfo, "mode hetero");
    if (g_n >= 2 && cheap && !(env && std::strcmp(env, "0") == 0)) {
      const bool r0 = g_rank == 0;
      Buf big(16 * static_cast<size_t>(g_n), 4);
      expect_error("default check: count", flagosAllReduce(x.d(), x.d(), r0 ? 3 : 4, flagosFloat32, flagosSum, world, st),
                   flagosInvalidUsage, "disagree on count (this rank: ");
      expect_error("default check: dtype",
                   flagosAllGather(x.d(), big.d(), 2, r0 ? flagosFloat32 : flagosInt32, world, st), flagosInvalidUsage,
                   "disagree on datatype");
      expect_error("default check: op",
                   flagosReduceScatter(big.d(), x.d(), 2, flagosFloat32, r0 ? flagosSum : flagosMax, world, st),
                   flagosInvalidUsage, "disagree on op (this rank: ");
      expect_error("default check: root", flagosBroadcast(x.d(), x.d(), 5, flagosFloat32, r0 ? 0 : 1, world, st),
                   flagosInvalidUsage, "disagree on root");
      expect_error("default check: call", r0 ? flagosAllReduce(x.d(), x.d(), 5, flagosFloat32, flagosSum, world, st)
                                             : flagosReduce(x.d(), x.d(), 5, flagosFloat32, flagosSum, 0, world, st),
                   flagosInvalidUsage, "disagree on call");
      CHECK_OK(flagosGroupStart());
      CHECK_OK(flagosAllReduce(x.d(), x.d(), 2, flagosFloat32, flagosSum, world, st));
      CHECK_OK(flagosAllReduce(x.d(), x.d(), r0 ? 1 : 2, flagosFloat32, flagosSum, world, st));
      expect_error("default check: count in a group", flagosGroupEnd(), flagosInvalidUsage, "disagree on count");
      // The communicator stays usable: nothing was issued.
      Buf one(1, 4), sum(1, 4);
      store(one.h(), 0, flagosFloat32, 1);
      one.up();
      CHECK_OK(flagosAllReduce(one.d(), sum.d(), 1, flagosFloat32, flagosSum, world, st));
      mem.synchronize();
      sum.down();
      if (load(sum.h(), 0, flagosFloat32) == g_n) ++g_pass;
      else std::printf("FAIL all-reduce after a detected mismatch: %g\n", load(sum.h(), 0, flagosFloat32)), ++g_fail;
    }
  }

  // A second communicator from a fresh id that rank 0 shares over the first (as with NCCL + MPI).
  flagosUniqueId id;
  if (g_rank == 0) CHECK_OK(flagosCommGetUniqueId(&id));
  {
    Buf idbuf(sizeof(id), 1);
    std::memcpy(idbuf.h(), &id, sizeof(id));
    idbuf.up();
    CHECK_OK(flagosBroadcast(idbuf.d(), idbuf.d(), sizeof(id), flagosUint8, 0, world, st));
    idbuf.down();
    std::memcpy(&id, idbuf.h(), sizeof(id));
  }
  flagosConfig_t cfg = FLAGOS_CONFIG_INITIALIZER;
  cfg.device = device;
  cfg.timeout_ms = 20000;
  cfg.check_args = 1;
  if (g_rank == 1) {  // a wrong magic is rejected quickly; the root keeps waiting for the real rank 1
    flagosUniqueId bad = id;
    bad.internal[9] ^= 0x5a;
    flagosComm_t c = nullptr;
    const auto t0 = std::chrono::steady_clock::now();
    expect_error("wrong magic", flagosCommInitRankConfig(&c, g_n, bad, 1, &cfg), flagosInvalidArgument, "magic");
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(5)) {
      std::printf("FAIL wrong magic: took more than 5 s to be rejected\n");
      ++g_fail;
    }
  }
  flagosComm_t checked = nullptr;
  CHECK_OK(flagosCommInitRankConfig(&checked, g_n, id, g_rank, &cfg));
  int cnt = 0;
  CHECK_OK(flagosCommCount(checked, &cnt));
  char info[512];
  CHECK_OK(flagosCommRankInfo(checked, (g_rank + 1) % g_n, info, sizeof(info)));
  const bool forced = std::getenv("FLAGOS_COMM_CLUSTERS") || std::getenv("FLAGOS_COMM_SPLIT");
  if (cnt != g_n || !std::strstr(info, "adaptor") || (forced && !std::strstr(info, "mode hetero"))) {
    std::printf("FAIL rank info: count %d, '%s'\n", cnt, info);
    ++g_fail;
  } else {
    ++g_pass;
  }
  // Ranks disagreeing on count / dtype: every rank gets the same clear error, no hang.
  expect_error("count mismatch",
               flagosAllReduce(x.d(), x.d(), g_rank == 0 ? 10 : 11, flagosFloat32, flagosSum, checked, st),
               flagosInvalidUsage, "disagree on count");
  expect_error("dtype mismatch",
               flagosAllGather(x.d(), x.d(), 1, g_rank == 0 ? flagosFloat32 : flagosInt32, checked, st),
               flagosInvalidUsage, "disagree on datatype");
  // Still usable after the detected mismatch.
  Buf one(1, 4), sum(1, 4);
  store(one.h(), 0, flagosFloat32, 1);
  one.up();
  CHECK_OK(flagosAllReduce(one.d(), sum.d(), 1, flagosFloat32, flagosSum, checked, st));
  sum.down();
  if (load(sum.h(), 0, flagosFloat32) == g_n) ++g_pass;
  else std::printf("FAIL all-reduce after mismatch: %g\n", load(sum.h(), 0, flagosFloat32)), ++g_fail;
  // A receive of fewer elements than expected names both counts (the host adaptor sees message sizes).
  if (mem.host() && g_n >= 2 && g_rank <= 1) {
    if (g_rank == 0) CHECK_OK(flagosSend(x.d(), 5, flagosFloat32, 1, checked, st));
    else expect_error("recv count mismatch", flagosRecv(x.d(), 7, flagosFloat32, 0, checked, st), flagosInvalidUsage,
                      "expected 7 elements of f32 from rank 0, received 5");
  }
  CHECK_OK(flagosCommDestroy(checked));

  // A stale id: nobody listens there any more.
  flagosConfig_t quick = FLAGOS_CONFIG_INITIALIZER;
  quick.device = device;
  quick.timeout_ms = 300;
  flagosUniqueId stale;
  {
    char* p = stale.internal;
    std::memset(p, 0, sizeof(stale.internal));
    std::memcpy(p, "FLGC", 4);
    const uint32_t proto = 2;
    std::memcpy(p + 4, &proto, 4);
    const uint64_t magic = 0x1234;
    std::memcpy(p + 8, &magic, 8);
    const uint16_t port = 1;  // privileged, never listening in CI
    std::memcpy(p + 16, &port, 2);
    std::strcpy(p + 24, "127.0.0.1");
  }
  flagosComm_t c = nullptr;
  if (g_n > 1) {
    const auto t0 = std::chrono::steady_clock::now();
    expect_error("stale id", flagosCommInitRankConfig(&c, 2, stale, 1, &quick), flagosTimeout, "no root answered");
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(3)) std::printf("FAIL stale id: slow\n"), ++g_fail;
  }
  flagosUniqueId garbage;
  std::memset(&garbage, 7, sizeof(garbage));
  expect_error("garbage id", flagosCommInitRank(&c, 2, garbage, 1), flagosInvalidArgument, "bad tag");
}

}  // namespace comm_test
