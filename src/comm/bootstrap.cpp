// TCP rendezvous. Frames are a u32 length followed by the payload; the payload starts with a kind
// byte. A rank sends HELLO (magic, version, nranks, rank, info); the root answers every rank with
// TABLE (all infos) once all arrived, or ERROR (a message) when the rank must give up. Afterwards
// DATA frames carry all-gathers: each rank sends its blob, the root sends back all of them.
#include "bootstrap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace flagos::comm {
namespace {

constexpr char kIdTag[4] = {'F', 'L', 'G', 'C'};
constexpr uint32_t kProtocol = 2;
constexpr size_t kHostBytes = 96;
enum FrameKind : uint8_t { kHello = 1, kTable = 2, kError = 3, kData = 4 };

using Clock = std::chrono::steady_clock;

std::string errno_text() { return std::strerror(errno); }

// Listeners opened by make_unique_id, adopted by rank 0's rendezvous (keyed by magic).
std::mutex g_listen_mu;
std::map<uint64_t, int> g_listeners;
bool g_env_id_used = false;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept { reset(o.release()); return *this; }
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset(int f = -1) { if (fd_ >= 0) ::close(fd_); fd_ = f; }
 private:
  int fd_;
};

// ---- serialization ----
struct Writer {
  std::string buf;
  void u8(uint8_t v) { buf.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { buf.append(reinterpret_cast<const char*>(&v), 4); }
  void u64(uint64_t v) { buf.append(reinterpret_cast<const char*>(&v), 8); }
  void str(const std::string& s) { u32(static_cast<uint32_t>(s.size())); buf += s; }
};
struct Reader {
  const std::string& buf;
  size_t pos = 0;
  bool ok = true;
  template <typename T>
  T num() {
    T v{};
    if (pos + sizeof(T) > buf.size()) { ok = false; return v; }
    std::memcpy(&v, buf.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str() {
    const uint32_t n = num<uint32_t>();
    if (!ok || pos + n > buf.size()) { ok = false; return {}; }
    std::string s = buf.substr(pos, n);
    pos += n;
    return s;
  }
};
void put_info(Writer& w, const RankInfo& r) {
  w.str(r.device); w.str(r.host); w.u64(static_cast<uint64_t>(r.pid)); w.str(r.adaptor); w.str(r.caps);
  w.str(r.transport); w.str(r.layout);
}
RankInfo get_info(Reader& rd) {
  RankInfo r;
  r.device = rd.str(); r.host = rd.str(); r.pid = static_cast<int64_t>(rd.num<uint64_t>());
  r.adaptor = rd.str(); r.caps = rd.str(); r.transport = rd.str(); r.layout = rd.str();
  return r;
}

// ---- sockets with deadlines ----
int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Returns false on timeout; throws on socket errors / peer closing.
bool io_all(int fd, char* p, size_t n, bool writing, Clock::time_point deadline, const std::string& what) {
  while (n > 0) {
    pollfd pfd{fd, static_cast<short>(writing ? POLLOUT : POLLIN), 0};
    const int pr = ::poll(&pfd, 1, ms_left(deadline));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) comm_fail(flagosSystemError, what, ": poll failed: ", errno_text());
    if (pr == 0) return false;
    const ssize_t k = writing ? ::send(fd, p, n, MSG_NOSIGNAL) : ::recv(fd, p, n, 0);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (k < 0) comm_fail(flagosRemoteError, what, ": ", errno_text());
    if (k == 0) comm_fail(flagosRemoteError, what, ": the peer closed the connection");
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}
bool send_frame(int fd, const std::string& payload, Clock::time_point deadline, const std::string& what) {
  std::string buf(4, '\0');
  const uint32_t n = static_cast<uint32_t>(payload.size());
  std::memcpy(buf.data(), &n, 4);
  buf += payload;
  return io_all(fd, buf.data(), buf.size(), true, deadline, what);
}
// Returns false on timeout.
bool recv_frame(int fd, std::string& payload, Clock::time_point deadline, const std::string& what) {
  uint32_t n = 0;
  if (!io_all(fd, reinterpret_cast<char*>(&n), 4, false, deadline, what)) return false;
  if (n > (64u << 20)) comm_fail(flagosRemoteError, what, ": frame of ", n, " bytes is not from a flagos rank");
  payload.assign(n, '\0');
  return io_all(fd, payload.data(), n, false, deadline, what);
}

sockaddr_in resolve(const std::string& host, uint16_t port, const char* call) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res)
    comm_fail(flagosInvalidArgument, call, ": cannot resolve the rendezvous host '", host, "': ", gai_strerror(rc));
  sockaddr_in a{};
  std::memcpy(&a, res->ai_addr, sizeof(a));
  ::freeaddrinfo(res);
  a.sin_port = htons(port);
  return a;
}

Fd listen_on(uint16_t port, const char* call) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) comm_fail(flagosSystemError, call, ": socket: ", errno_text());
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = htons(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
    comm_fail(flagosSystemError, call, ": cannot listen on port ", port, ": ", errno_text());
  if (::listen(fd.get(), 128) != 0) comm_fail(flagosSystemError, call, ": listen: ", errno_text());
  return fd;
}

std::string first_ipv4() {
  ifaddrs* ifs = nullptr;
  std::string found;
  if (::getifaddrs(&ifs) == 0) {
    for (ifaddrs* i = ifs; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      const auto* sa = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      if ((ntohl(sa->sin_addr.s_addr) >> 24) == 127) continue;
      char buf[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &sa->sin_addr, buf, sizeof(buf));
      found = buf;
      break;
    }
    ::freeifaddrs(ifs);
  }
  return found.empty() ? "127.0.0.1" : found;
}

// FLAGOS_COMM_ADDR = host or host:port.
void parse_addr_env(std::string& host, int& port) {
  const char* e = std::getenv("FLAGOS_COMM_ADDR");
  port = -1;
  if (!e || !*e) return;
  std::string s = e;
  const auto colon = s.rfind(':');
  if (colon != std::string::npos) {
    const std::string p = s.substr(colon + 1);
    char* end = nullptr;
    const long v = std::strtol(p.c_str(), &end, 10);
    if (p.empty() || *end || v <= 0 || v > 65535)
      comm_fail(flagosInvalidArgument, "flagosCommGetUniqueId: FLAGOS_COMM_ADDR='", s, "' has a bad port '", p,
                "' (expected host or host:port)");
    port = static_cast<int>(v);
    s = s.substr(0, colon);
  }
  host = s;
}

}  // namespace

flagosUniqueId encode_id(const IdFields& f) {
  flagosUniqueId id{};
  char* p = id.internal;
  std::memcpy(p, kIdTag, 4);
  std::memcpy(p + 4, &kProtocol, 4);
  std::memcpy(p + 8, &f.magic, 8);
  std::memcpy(p + 16, &f.port, 2);
  std::strncpy(p + 24, f.host.c_str(), kHostBytes - 1);
  return id;
}

IdFields decode_id(const flagosUniqueId& id, const char* call) {
  const char* p = id.internal;
  if (std::memcmp(p, kIdTag, 4) != 0)
    comm_fail(flagosInvalidArgument, call, ": the unique id was not made by flagosCommGetUniqueId (bad tag)");
  uint32_t proto = 0;
  std::memcpy(&proto, p + 4, 4);
  if (proto != kProtocol)
    comm_fail(flagosInvalidArgument, call, ": the unique id has protocol version ", proto, ", this library speaks ",
              kProtocol);
  IdFields f;
  std::memcpy(&f.magic, p + 8, 8);
  std::memcpy(&f.port, p + 16, 2);
  f.host.assign(p + 24, strnlen(p + 24, kHostBytes));
  if (f.host.empty() || f.port == 0) comm_fail(flagosInvalidArgument, call, ": the unique id has no address");
  return f;
}

std::string describe_id(const IdFields& f) {
  char m[32];
  std::snprintf(m, sizeof(m), "%016llx", static_cast<unsigned long long>(f.magic));
  return detail::concat(f.host, ":", f.port, " magic 0x", m);
}

flagosUniqueId make_unique_id() {
  const char* call = "flagosCommGetUniqueId";
  std::string host;
  int port = -1;
  parse_addr_env(host, port);
  const char* magic_env = std::getenv("FLAGOS_COMM_MAGIC");
  {
    std::lock_guard lock(g_listen_mu);
    if (port > 0 && magic_env && *magic_env && !g_env_id_used) {  // launched: the same id on every rank
      g_env_id_used = true;
      char* end = nullptr;
      const unsigned long long m = std::strtoull(magic_env, &end, 16);
      if (*end || m == 0)
        comm_fail(flagosInvalidArgument, call, ": FLAGOS_COMM_MAGIC='", magic_env, "' is not a non-zero hex number");
      return encode_id({host, static_cast<uint16_t>(port), m});
    }
  }
  if (host.empty()) host = first_ipv4();
  // A fresh id: listen now (on a new port; the pinned port belongs to the launcher's world id).
  Fd fd = listen_on(0, call);
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
    comm_fail(flagosSystemError, call, ": getsockname: ", errno_text());
  std::random_device rd;
  uint64_t magic = 0;
  while (magic == 0) magic = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  IdFields f{host, ntohs(a.sin_port), magic};
  std::lock_guard lock(g_listen_mu);
  g_listeners[magic] = fd.release();
  return encode_id(f);
}

namespace {

std::string hello_payload(const IdFields& f, int nranks, int rank, const RankInfo& mine) {
  Writer w;
  w.u8(kHello); w.u64(f.magic); w.u32(kProtocol); w.u32(static_cast<uint32_t>(nranks));
  w.u32(static_cast<uint32_t>(rank));
  put_info(w, mine);
  return w.buf;
}
std::string error_payload(const std::string& msg) {
  Writer w;
  w.u8(kError); w.str(msg);
  return w.buf;
}

std::vector<RankInfo> serve(const IdFields& f, int nranks, const RankInfo& mine, std::chrono::milliseconds timeout,
                            std::vector<int>& keep) {
  const char* call = "flagosCommInitRank";
  const auto deadline = Clock::now() + timeout;
  Fd listener;
  {
    std::lock_guard lock(g_listen_mu);
    auto it = g_listeners.find(f.magic);
    if (it != g_listeners.end()) {
      listener.reset(it->second);
      g_listeners.erase(it);
    }
  }
  if (listener.get() < 0) listener = listen_on(f.port, call);
  std::vector<RankInfo> table(static_cast<size_t>(nranks));
  table[0] = mine;
  std::vector<Fd> peers(static_cast<size_t>(nranks));
  int arrived = 1;
  auto fail_all = [&](flagosResult_t r, const std::string& msg) {
    for (auto& p : peers)
      if (p.get() >= 0) {
        try { send_frame(p.get(), error_payload(msg), Clock::now() + std::chrono::seconds(1), call); } catch (...) {}
      }
    comm_fail(r, msg);
  };
  while (arrived < nranks) {
    pollfd pfd{listener.get(), POLLIN, 0};
    const int pr = ::poll(&pfd, 1, ms_left(deadline));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) {
      std::string missing;
      for (int r = 1; r < nranks; ++r)
        if (peers[static_cast<size_t>(r)].get() < 0) missing += (missing.empty() ? "" : ",") + std::to_string(r);
      fail_all(flagosTimeout, detail::concat(call, " (rank 0 of ", nranks, "): ranks ", missing,
                                             " did not join within ", timeout.count(), " ms (root at ",
                                             describe_id(f), "; FLAGOS_COMM_TIMEOUT_MS sets the limit)"));
    }
    Fd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (c.get() < 0) continue;
    const int one = 1;
    ::setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::string hello;
    // A stranger gets a few seconds to speak; it must not stall the real ranks.
    const auto conn_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(5));
    try {
      if (!recv_frame(c.get(), hello, conn_deadline, "rendezvous")) continue;
    } catch (const CommError&) {
      continue;
    }
    Reader rd{hello};
    const uint8_t kind = rd.num<uint8_t>();
    const uint64_t magic = rd.num<uint64_t>();
    const uint32_t proto = rd.num<uint32_t>();
    const int their_n = static_cast<int>(rd.num<uint32_t>());
    const int their_rank = static_cast<int>(rd.num<uint32_t>());
    RankInfo info = get_info(rd);
    auto reject = [&](const std::string& msg) {
      try { send_frame(c.get(), error_payload(msg), conn_deadline, call); } catch (...) {}
    };
    if (!rd.ok || kind != kHello || proto != kProtocol) {
      reject(detail::concat("the root at ", f.host, ":", f.port, " got a malformed hello (protocol ", proto,
                            ", expected ", kProtocol, ")"));
      continue;
    }
    if (magic != f.magic) {  // a stale or foreign id: reject it, keep waiting for the real rank
      char m[32];
      std::snprintf(m, sizeof(m), "%016llx", static_cast<unsigned long long>(magic));
      reject(detail::concat("the root at ", f.host, ":", f.port, " rejected unique id magic 0x", m,
                            ": it does not match this communicator's id (a wrong or stale id, e.g. from an earlier run)"));
      continue;
    }
    if (their_n != nranks)
      fail_all(flagosInvalidUsage, detail::concat(call, ": rank ", their_rank, " passed nranks=", their_n,
                                                  " but rank 0 passed nranks=", nranks));
    if (their_rank <= 0 || their_rank >= nranks)
      fail_all(flagosInvalidUsage, detail::concat(call, ": a rank joined as rank ", their_rank, " (valid: 1..",
                                                  nranks - 1, ")"));
    auto& slot = peers[static_cast<size_t>(their_rank)];
    if (slot.get() >= 0) {
      reject(detail::concat(call, ": two processes passed rank=", their_rank, " (pids ",
                            table[static_cast<size_t>(their_rank)].pid, " and ", info.pid, ")"));
      fail_all(flagosInvalidUsage, detail::concat(call, ": two processes passed rank=", their_rank, " (pids ",
                                                  table[static_cast<size_t>(their_rank)].pid, " and ", info.pid, ")"));
    }
    table[static_cast<size_t>(their_rank)] = std::move(info);
    slot = std::move(c);
    ++arrived;
  }
  Writer w;
  w.u8(kTable);
  w.u32(static_cast<uint32_t>(nranks));
  for (const auto& r : table) put_info(w, r);
  for (int r = 1; r < nranks; ++r)
    if (!send_frame(peers[static_cast<size_t>(r)].get(), w.buf, deadline, call))
      comm_fail(flagosTimeout, call, " (rank 0): timed out sending the rank table to rank ", r);
  keep.assign(static_cast<size_t>(nranks), -1);
  for (int r = 1; r < nranks; ++r) keep[static_cast<size_t>(r)] = peers[static_cast<size_t>(r)].release();
  return table;
}

std::vector<RankInfo> join(const IdFields& f, int nranks, int rank, const RankInfo& mine,
                           std::chrono::milliseconds timeout, std::vector<int>& keep) {
  const std::string call = detail::concat("flagosCommInitRank (rank ", rank, " of ", nranks, ")");
  const auto deadline = Clock::now() + timeout;
  const sockaddr_in addr = resolve(f.host, f.port, call.c_str());
  Fd fd;
  std::string last_err;
  while (true) {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) comm_fail(flagosSystemError, call, ": socket: ", errno_text());
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) break;
    last_err = errno_text();
    if (Clock::now() >= deadline)
      comm_fail(flagosTimeout, call, ": no root answered at ", f.host, ":", f.port, " within ", timeout.count(),
                " ms (", last_err, "); the unique id may be stale, or rank 0 has not called flagosCommInitRank");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!send_frame(fd.get(), hello_payload(f, nranks, rank, mine), deadline, call))
    comm_fail(flagosTimeout, call, ": timed out sending to the root at ", f.host, ":", f.port);
  std::string reply;
  try {
    if (!recv_frame(fd.get(), reply, deadline, call))
      comm_fail(flagosTimeout, call, ": the root at ", f.host, ":", f.port, " did not complete the rendezvous within ",
                timeout.count(), " ms (other ranks missing?)");
  } catch (const CommError& e) {
    if (e.result == flagosTimeout) throw;
    comm_fail(flagosRemoteError, e.what(), " (the root failed or went away)");
  }
  Reader rd{reply};
  const uint8_t kind = rd.num<uint8_t>();
  if (kind == kError) {
    const std::string msg = rd.str();
    const bool wrong_id = msg.find("magic") != std::string::npos;
    comm_fail(wrong_id ? flagosInvalidArgument : flagosInvalidUsage, call, ": ", msg);
  }
  const uint32_t n = rd.num<uint32_t>();
  if (kind != kTable || static_cast<int>(n) != nranks)
    comm_fail(flagosRemoteError, call, ": malformed reply from the root at ", f.host, ":", f.port);
  std::vector<RankInfo> table;
  for (uint32_t i = 0; i < n; ++i) table.push_back(get_info(rd));
  if (!rd.ok) comm_fail(flagosRemoteError, call, ": truncated rank table from the root");
  keep = {fd.release()};
  return table;
}

}  // namespace

Bootstrap::Bootstrap(const flagosUniqueId& id, int nranks, int rank, const RankInfo& mine,
                     std::chrono::milliseconds timeout)
    : nranks_(nranks), rank_(rank), timeout_(timeout) {
  const IdFields f = decode_id(id, "flagosCommInitRank");
  if (nranks == 1) table_ = {mine};
  else if (rank == 0) table_ = serve(f, nranks, mine, timeout, fds_);
  else table_ = join(f, nranks, rank, mine, timeout, fds_);
}

Bootstrap::~Bootstrap() {
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

std::vector<std::string> Bootstrap::allgather(const std::string& mine) {
  const std::string call = detail::concat("flagosCommInitRank (rank ", rank_, " of ", nranks_, "): bootstrap exchange");
  const auto deadline = Clock::now() + timeout_;
  std::vector<std::string> all(static_cast<size_t>(nranks_));
  all[static_cast<size_t>(rank_)] = mine;
  if (nranks_ == 1) return all;
  auto expect_data = [&](const std::string& frame, int from) {
    if (frame.empty() || static_cast<uint8_t>(frame[0]) != kData)
      comm_fail(flagosRemoteError, call, ": unexpected frame from rank ", from);
  };
  if (rank_ == 0) {
    for (int r = 1; r < nranks_; ++r) {
      std::string frame;
      if (!recv_frame(fds_[static_cast<size_t>(r)], frame, deadline, call))
        comm_fail(flagosTimeout, call, ": rank ", r, " sent nothing within ", timeout_.count(), " ms");
      expect_data(frame, r);
      all[static_cast<size_t>(r)] = frame.substr(1);
    }
    Writer w;
    w.u8(kData);
    for (const auto& s : all) w.str(s);
    for (int r = 1; r < nranks_; ++r)
      if (!send_frame(fds_[static_cast<size_t>(r)], w.buf, deadline, call))
        comm_fail(flagosTimeout, call, ": timed out sending to rank ", r);
    return all;
  }
  if (!send_frame(fds_[0], std::string(1, static_cast<char>(kData)) + mine, deadline, call))
    comm_fail(flagosTimeout, call, ": timed out sending to the root");
  std::string frame;
  if (!recv_frame(fds_[0], frame, deadline, call))
    comm_fail(flagosTimeout, call, ": the root sent nothing within ", timeout_.count(), " ms");
  expect_data(frame, 0);
  Reader rd{frame, 1};
  for (auto& s : all) s = rd.str();
  if (!rd.ok) comm_fail(flagosRemoteError, call, ": truncated exchange from the root");
  return all;
}

}  // namespace flagos::comm
