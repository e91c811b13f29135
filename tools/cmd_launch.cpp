// `flagos launch -n N [--hosts h1:4,h2:4] -- CMD ...`: starts N ranks of CMD with FLAGOS_RANK,
// FLAGOS_WORLD_SIZE, FLAGOS_COMM_ADDR and FLAGOS_COMM_MAGIC set, prefixes their output with
// "[rank k] ", and stops all when one fails, exiting with the first failure's code. With Open MPI's
// mpirun on PATH the ranks are started by mpirun (one MPI job for the host adaptor; remote hosts
// through mpirun's ssh agent); otherwise directly, remote hosts through ssh (FLAGOS_LAUNCH_SSH
// replaces "ssh -o BatchMode=yes"). Ranks fill the hosts' slots in order. Each rank runs under
// `flagos launch --rank-exec`, which forwards signals, prefixes output and records the rank's exit
// status for the report (src/comm/README.md explains the design).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "flagos/error.h"
#include "launch_hosts.h"

namespace flagos::cli {
namespace {

volatile sig_atomic_t g_child = 0;  // pid that SIGTERM/SIGINT/SIGHUP are forwarded to
volatile sig_atomic_t g_children_n = 0;
pid_t g_children[1024];

void forward_signal(int sig) {
  if (g_child > 0) ::kill(static_cast<pid_t>(g_child), sig);
  for (int i = 0; i < g_children_n; ++i)
    if (g_children[i] > 0) ::kill(g_children[i], sig);
}

void install_forwarding() {
  struct sigaction sa{};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaction(s, &sa, nullptr);
}

void write_all(int fd, const std::string& s) {
  const char* p = s.data();
  size_t n = s.size();
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return;
    p += k;
    n -= static_cast<size_t>(k);
  }
}

std::string signal_text(int sig) {
  const char* d = sigdescr_np(sig);
  const char* a = sigabbrev_np(sig);
  return detail::concat("signal ", sig, a ? std::string(" (SIG") + a + (d ? std::string(": ") + d : "") + ")" : "");
}

std::string env_or(const char* name, const std::string& dflt) {
  const char* e = std::getenv(name);
  return e && *e ? e : dflt;
}

// One rank: run CMD as a child, prefix its output, record how it ended.
int rank_exec(const std::vector<std::string>& cmd) {
  const std::string rank = env_or("FLAGOS_RANK", env_or("OMPI_COMM_WORLD_RANK", "0"));
  const std::string size = env_or("FLAGOS_WORLD_SIZE", env_or("OMPI_COMM_WORLD_SIZE", "1"));
  ::setenv("FLAGOS_RANK", rank.c_str(), 1);
  ::setenv("FLAGOS_WORLD_SIZE", size.c_str(), 1);
  ::setenv("FLAGOS_LOCAL_RANK", env_or("OMPI_COMM_WORLD_LOCAL_RANK", rank).c_str(), 1);
  const std::string prefix = "[rank " + rank + "] ";
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) fail<RuntimeError>("pipe: ", std::strerror(errno));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) fail<RuntimeError>("fork: ", std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the rank runner
    if (::getppid() != parent) ::_exit(137);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    if (env_or("FLAGOS_LAUNCH_WATCH_STDIN", "") == "1") {
      const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (null_fd >= 0) ::dup2(null_fd, 0);
    }
    std::vector<char*> argv;
    for (const auto& s : cmd) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    const std::string msg = "flagos launch: cannot run '" + cmd[0] + "': " + std::strerror(errno) + "\n";
    write_all(2, msg);
    ::_exit(127);
  }
  g_child = pid;
  install_forwarding();
  ::close(out[1]);
  ::close(err[1]);
  // A remote rank (started through ssh) stops its program when the launcher's end of stdin closes.
  const bool watch_stdin = env_or("FLAGOS_LAUNCH_WATCH_STDIN", "") == "1";
  pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {watch_stdin ? 0 : -1, POLLIN, 0}};
  std::string pending[2];
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    const int pr = ::poll(fds, 3, -1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) break;
    if (fds[2].fd >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t k = ::read(0, buf, sizeof(buf));
      if (k <= 0) {  // the launcher went away or stopped the job
        fds[2].fd = -1;
        ::kill(pid, SIGTERM);
        std::thread([pid] {
          std::this_thread::sleep_for(std::chrono::seconds(3));
          ::kill(pid, SIGKILL);
        }).detach();
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t k = ::read(fds[i].fd, buf, sizeof(buf));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        if (!pending[i].empty()) write_all(i + 1, prefix + pending[i] + "\n");
        pending[i].clear();
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      pending[i].append(buf, static_cast<size_t>(k));
      std::string lines;
      size_t start = 0, nl;
      while ((nl = pending[i].find('\n', start)) != std::string::npos) {
        lines += prefix;
        lines.append(pending[i], start, nl + 1 - start);
        start = nl + 1;
      }
      pending[i].erase(0, start);
      if (!lines.empty()) write_all(i + 1, lines);
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  int code;
  std::string how;
  if (WIFSIGNALED(status)) {
    code = 128 + WTERMSIG(status);
    how = "signal " + std::to_string(WTERMSIG(status));
    write_all(2, prefix + "killed by " + signal_text(WTERMSIG(status)) + "\n");
  } else {
    code = WEXITSTATUS(status);
    how = "exit " + std::to_string(code);
  }
  const char* dir = std::getenv("FLAGOS_LAUNCH_DIR");
  if (dir && *dir) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
    std::ofstream(std::string(dir) + "/rank" + rank) << ns << " " << how << "\n";
  }
  return code;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof(a);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    fail<RuntimeError>("flagos launch: cannot find a free TCP port: ", std::strerror(errno));
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string find_on_path(const std::string& name) {
  const std::string path = env_or("PATH", "/usr/bin:/bin");
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find(':', start), path.size());
    const std::string p = path.substr(start, end - start) + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
    start = end + 1;
  }
  return "";
}

// Starts argv with extra environment; with stdin_fd >= 0 that fd becomes its stdin.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env,
            int stdin_fd = -1) {
  const pid_t pid = ::fork();
  if (pid < 0) fail<RuntimeError>("flagos launch: fork: ", std::strerror(errno));
  if (pid == 0) {
    if (stdin_fd >= 0) ::dup2(stdin_fd, 0);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    const std::string msg = "flagos launch: cannot run '" + argv[0] + "': " + std::strerror(errno) + "\n";
    write_all(2, msg);
    ::_exit(127);
  }
  return pid;
}

int exit_code_of(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

void usage_error(const std::string& msg) {
  fail("flagos launch: ", msg, " (usage: flagos launch -n N [--hosts h1:4,h2:4] [--no-mpi] -- CMD [ARGS...])");
}

// Splits FLAGOS_LAUNCH_SSH (or the default) at spaces.
std::vector<std::string> ssh_command() {
  const std::string spec = env_or("FLAGOS_LAUNCH_SSH", "ssh -o BatchMode=yes");
  std::vector<std::string> out;
  size_t p = 0;
  while (p < spec.size()) {
    const size_t e = std::min(spec.find(' ', p), spec.size());
    if (e > p) out.push_back(spec.substr(p, e - p));
    p = e + 1;
  }
  return out;
}

// The FLAGOS_* variables of this environment (forwarded to every rank, also remote ones).
std::vector<std::string> flagos_env_names() {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    if (kv.rfind("FLAGOS_", 0) == 0 && kv.find('=') != std::string::npos) out.push_back(kv.substr(0, kv.find('=')));
  }
  return out;
}

}  // namespace

int cmd_launch(int argc, char** argv) {
  std::vector<std::string> opts, cmd;
  int i = 0;
  for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) opts.emplace_back(argv[i]);
  for (++i; i < argc; ++i) cmd.emplace_back(argv[i]);
  if (cmd.empty()) usage_error("no command after '--'");
  int n = -1;
  bool no_mpi = false, rank_mode = false;
  std::vector<HostSlots> hosts;
  for (size_t k = 0; k < opts.size(); ++k) {
    const std::string& o = opts[k];
    if ((o == "-n" || o == "--np") && k + 1 < opts.size()) {
      char* end = nullptr;
      n = static_cast<int>(std::strtol(opts[++k].c_str(), &end, 10));
      if (*end || n < 1 || n > 1024) usage_error("-n needs a number of ranks in 1..1024, got '" + opts[k] + "'");
    } else if ((o == "--hosts" || o == "-H") && k + 1 < opts.size()) {
      hosts = parse_hosts(opts[++k]);
    } else if (o == "--no-mpi") {
      no_mpi = true;
    } else if (o == "--rank-exec") {
      rank_mode = true;
    } else {
      usage_error("unknown option '" + o + "'");
    }
  }
  if (rank_mode) return rank_exec(cmd);
  if (hosts.empty()) hosts.push_back({"localhost", n < 1 ? 1 : n, true});
  int slots = 0;
  for (const auto& h : hosts) slots += h.slots;
  if (n < 1) n = slots;
  if (n > slots) usage_error("-n " + std::to_string(n) + " exceeds the " + std::to_string(slots) + " slots of --hosts " + hosts_spec(hosts));
  // Rank r runs on the host whose slots it falls in (hosts filled in order, as mpirun maps by slot).
  std::vector<const HostSlots*> host_of;
  for (const auto& h : hosts)
    for (int k = 0; k < h.slots && static_cast<int>(host_of.size()) < n; ++k) host_of.push_back(&h);
  bool any_remote = false;
  for (const auto* h : host_of) any_remote = any_remote || !h->local;

  // Rendezvous for the communication library: rank 0's host (loopback when every rank is here),
  // a port free on this machine, and a fresh magic so stale ranks of earlier runs are rejected.
  std::string host = env_or("FLAGOS_COMM_ADDR", "");
  if (host.find(':') != std::string::npos) host = host.substr(0, host.find(':'));
  if (host.empty()) host = !any_remote ? "127.0.0.1" : host_of[0]->local ? local_address() : host_of[0]->host;
  std::random_device rd;
  char magic[32];
  std::snprintf(magic, sizeof(magic), "%08x%08x", rd(), rd() | 1u);
  char dir_tmpl[] = "/tmp/flagos-launch-XXXXXX";
  if (!::mkdtemp(dir_tmpl)) fail<RuntimeError>("flagos launch: mkdtemp: ", std::strerror(errno));
  const std::string dir = dir_tmpl;
  std::vector<std::pair<std::string, std::string>> env = {
      {"FLAGOS_COMM_ADDR", host + ":" + std::to_string(free_port())},
      {"FLAGOS_COMM_MAGIC", magic},
      {"FLAGOS_WORLD_SIZE", std::to_string(n)},
      {"FLAGOS_LAUNCH_DIR", dir}};
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);  // so flagos_env_names() lists them
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string mpirun = no_mpi ? "" : find_on_path("mpirun");
  const auto t0 = std::chrono::steady_clock::now();
  install_forwarding();
  int rc = 0;
  struct Failure { long long ns; int rank; std::string how; };
  std::vector<Failure> fails;
  if (!mpirun.empty()) {
    // As root, Open MPI refuses to start without these (CI containers run as root).
    env.emplace_back("OMPI_ALLOW_RUN_AS_ROOT", "1");
    env.emplace_back("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    std::vector<std::string> a = {mpirun, "--oversubscribe", "--bind-to", "none", "-n", std::to_string(n)};
    if (any_remote || hosts.size() > 1 || hosts[0].host != "localhost") {
      a.insert(a.end(), {"--host", hosts_spec(hosts)});
      if (const char* agent = std::getenv("FLAGOS_LAUNCH_SSH"); agent && *agent)
        a.insert(a.end(), {"--mca", "plm_rsh_agent", agent});
    }
    for (const auto& v : flagos_env_names()) a.insert(a.end(), {"-x", v});
    a.insert(a.end(), {self, "launch", "--rank-exec", "--"});
    a.insert(a.end(), cmd.begin(), cmd.end());
    const pid_t pid = spawn(a, env);
    g_child = pid;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    g_child = 0;
    rc = exit_code_of(status);
  } else {
    // Local ranks directly; remote ones through ssh, each with a pipe as stdin whose closing stops it.
    std::vector<pid_t> pids;
    std::vector<int> stdin_pipes;
    const auto names = flagos_env_names();
    for (int r = 0; r < n; ++r) {
      const HostSlots& h = *host_of[static_cast<size_t>(r)];
      std::vector<std::string> a = {self, "launch", "--rank-exec", "--"};
      a.insert(a.end(), cmd.begin(), cmd.end());
      if (h.local) {
        auto e = env;
        e.emplace_back("FLAGOS_RANK", std::to_string(r));
        pids.push_back(spawn(a, e));
        stdin_pipes.push_back(-1);
      } else {
        std::string remote = "cd " + shell_quote(std::filesystem::current_path().string()) + " && exec env";
        for (const auto& v : names) remote += " " + shell_quote(v + "=" + env_or(v.c_str(), ""));
        remote += " FLAGOS_RANK=" + std::to_string(r) + " FLAGOS_LAUNCH_WATCH_STDIN=1";
        for (const auto& s : a) remote += " " + shell_quote(s);
        std::vector<std::string> ssh = ssh_command();
        ssh.push_back(h.host);
        ssh.push_back(remote);
        int pipefd[2];
        if (::pipe2(pipefd, O_CLOEXEC) != 0) fail<RuntimeError>("flagos launch: pipe: ", std::strerror(errno));
        pids.push_back(spawn(ssh, {}, pipefd[0]));
        ::close(pipefd[0]);
        stdin_pipes.push_back(pipefd[1]);
      }
      g_children[g_children_n] = pids.back();
      g_children_n = g_children_n + 1;
    }
    auto stop_all = [&] {
      for (int& fd : stdin_pipes)
        if (fd >= 0) ::close(fd), fd = -1;
      for (pid_t q : pids)
        if (q > 0) ::kill(q, SIGTERM);
    };
    int left = n;
    bool stopping = false;
    auto stop_deadline = std::chrono::steady_clock::now();
    while (left > 0) {
      int status = 0;
      const pid_t p = ::waitpid(-1, &status, stopping ? WNOHANG : 0);
      if (p < 0 && errno == EINTR) continue;
      if (p < 0) break;
      if (p == 0) {
        if (std::chrono::steady_clock::now() > stop_deadline)
          for (pid_t q : pids) if (q > 0) ::kill(q, SIGKILL);
        ::usleep(20000);
        continue;
      }
      auto it = std::find(pids.begin(), pids.end(), p);
      if (it == pids.end()) continue;
      const int r = static_cast<int>(it - pids.begin());
      *it = -1;
      --left;
      const int code = exit_code_of(status);
      // Remote ranks leave no status file here: their ssh's exit code stands for them.
      if (code != 0 && !host_of[static_cast<size_t>(r)]->local && !stopping)
        fails.push_back({std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count(),
                         r, "(on " + host_of[static_cast<size_t>(r)]->host + ") exited with code " + std::to_string(code)});
      if (code != 0 && rc == 0) rc = code;
      if (code != 0 && !stopping) {
        stopping = true;
        stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        stop_all();
      }
    }
    for (int fd : stdin_pipes)
      if (fd >= 0) ::close(fd);
    g_children_n = 0;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Report the first rank that failed (status files carry a timestamp).
  for (int r = 0; r < n; ++r) {
    std::ifstream f(dir + "/rank" + std::to_string(r));
    long long ns = 0;
    std::string kind;
    int v = 0;
    const HostSlots& h = *host_of[static_cast<size_t>(r)];
    const std::string on = h.local ? "" : "(on " + h.host + ") ";
    if (f >> ns >> kind >> v) {
      if (kind == "signal") fails.push_back({ns, r, on + "was killed by " + signal_text(v)});
      else if (v != 0) fails.push_back({ns, r, on + "exited with code " + std::to_string(v)});
    }
    std::filesystem::remove(dir + "/rank" + std::to_string(r));
  }
  std::filesystem::remove(dir);
  if (rc != 0) {
    std::sort(fails.begin(), fails.end(), [](const Failure& a, const Failure& b) { return a.ns < b.ns; });
    char t[32];
    std::snprintf(t, sizeof(t), "%.1f", secs);
    if (!fails.empty()) {
      const Failure& f = fails.front();
      std::fprintf(stderr, "flagos launch: rank %d %s after %s s; stopped the other %d rank(s); exit code %d\n",
                   f.rank, f.how.c_str(), t, n - 1, rc);
    } else {
      std::fprintf(stderr, "flagos launch: %s failed with exit code %d after %s s (no rank reported a status)\n",
                   mpirun.empty() ? "a rank runner" : "mpirun", rc, t);
    }
  }
  return rc;
}

}  // namespace flagos::cli
