// Launch tables: parsing, validation, lookup and formatting (see include/flagos/tuning.h).
#include "flagos/tuning.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "flagos/error.h"

namespace flagos::tuning {

Ints::Ints(std::initializer_list<int64_t> l) {
  for (int64_t x : l) push(x);
}

void Ints::push(int64_t x) {
  if (n >= kMaxInts) fail("tuning: more than ", kMaxInts, " key or config fields");
  v[static_cast<size_t>(n++)] = x;
}

bool Ints::operator==(const Ints& o) const {
  if (n != o.n) return false;
  for (int i = 0; i < n; ++i)
    if (v[static_cast<size_t>(i)] != o.v[static_cast<size_t>(i)]) return false;
  return true;
}

std::strong_ordering Ints::operator<=>(const Ints& o) const {
  for (int i = 0; i < std::min(n, o.n); ++i)
    if (auto c = v[static_cast<size_t>(i)] <=> o.v[static_cast<size_t>(i)]; c != 0) return c;
  return n <=> o.n;
}

int64_t bucket_pow2(int64_t x) {
  if (x <= 1) return x;
  int64_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

int64_t bucket_half_octave(int64_t x) {
  if (x <= 2) return x;
  const int64_t p = bucket_pow2(x);  // x in (p/2, p]
  const int64_t mid = p / 4 * 3;     // 3 * 2^(k-2) for p = 2^k
  return p >= 4 && x <= mid ? mid : p;
}

// ---------------------------------------------------------------- parsing

namespace {

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
    const size_t b = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\r') ++i;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
  return out;
}

bool valid_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

struct Field {
  std::string name;
  int64_t value;
};

}  // namespace

Table Table::parse(std::string_view text, const std::string& source) {
  Table t;
  t.source_ = source;
  int line_no = 0;
  int arch_line = 0;
  std::map<std::pair<std::string, Key>, int> seen;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    const auto tok = split_ws(line);
    if (tok.empty()) continue;
    auto where = [&] { return detail::concat(source, ":", line_no, ": "); };
    if (tok[0] == "arch") {
      if (tok.size() != 2 || !valid_name(tok[1]))
        fail(where(), "expected 'arch NAME' (e.g. 'arch sm_90'), got '", std::string(line), "'");
      if (arch_line) fail(where(), "second arch line (the first is on line ", arch_line, ")");
      arch_line = line_no;
      t.arch_ = std::string(tok[1]);
      continue;
    }
    if (!valid_name(tok[0]))
      fail(where(), "expected a family name (lowercase letters, digits, '_') or 'arch', got '", std::string(tok[0]), "'");
    Entry e;
    e.family = std::string(tok[0]);
    e.line = line_no;
    bool arrow = false;
    for (size_t i = 1; i < tok.size(); ++i) {
      if (tok[i] == "->") {
        if (arrow) fail(where(), "second '->'");
        arrow = true;
        continue;
      }
      const size_t eq = tok[i].find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == tok[i].size())
        fail(where(), "expected NAME=INTEGER, got '", std::string(tok[i]), "'");
      const std::string_view name = tok[i].substr(0, eq), num = tok[i].substr(eq + 1);
      if (!valid_name(name)) fail(where(), "bad field name '", std::string(name), "'");
      int64_t value = 0;
      const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), value);
      if (ec != std::errc() || p != num.data() + num.size())
        fail(where(), "field ", std::string(name), ": '", std::string(num), "' is not an integer");
      Ints& dst = arrow ? e.config : e.key;
      if (dst.n >= kMaxInts) fail(where(), "more than ", kMaxInts, " ", arrow ? "config" : "key", " fields");
      dst.push(value);
      (arrow ? e.param_names : e.key_names).push_back(std::string(name));
    }
    if (!arrow) fail(where(), "missing '->' between key and config (e.g. 'gemv m=1 n=4096 k=4096 -> rows=2 ...')");
    if (e.key.n == 0) fail(where(), "empty key");
    if (e.config.n == 0) fail(where(), "empty config");
    if (auto [it, fresh] = seen.emplace(std::pair{e.family, e.key}, line_no); !fresh)
      fail(where(), "duplicate entry for this ", e.family, " key (first on line ", it->second, ")");
    t.entries_.push_back(std::move(e));
  }
  if (!arch_line) fail(source, ": missing 'arch NAME' line (e.g. 'arch sm_90')");
  std::sort(t.entries_.begin(), t.entries_.end(), [](const Entry& a, const Entry& b) {
    return a.family != b.family ? a.family < b.family : a.key < b.key;
  });
  return t;
}

Table Table::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open the tuning table");
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail(path, ": read error");
  return parse(ss.str(), path);
}

void Table::validate(const std::vector<Family>& families) const {
  for (const Entry& e : entries_) {
    auto where = [&] { return detail::concat(source_, ":", e.line, ": "); };
    const Family* fam = nullptr;
    for (const Family& f : families)
      if (f.name == e.family) fam = &f;
    if (!fam) {
      std::string known;
      for (const Family& f : families) known += (known.empty() ? "" : ", ") + f.name;
      fail(where(), "unknown kernel family '", e.family, "' (known: ", known, ")");
    }
    auto names = [](const std::vector<std::string>& v) {
      std::string r;
      for (const auto& s : v) r += (r.empty() ? "" : " ") + s;
      return r;
    };
    const auto& got_k = e.key_names;
    const auto& got_p = e.param_names;
    if (!got_k.empty() && got_k != fam->key_names)
      fail(where(), e.family, " key fields are '", names(fam->key_names), "', got '", names(got_k), "'");
    if (!got_p.empty() && got_p != fam->param_names)
      fail(where(), e.family, " config fields are '", names(fam->param_names), "', got '", names(got_p), "'");
    if (e.key.n != static_cast<int>(fam->key_names.size()))
      fail(where(), e.family, " keys have ", fam->key_names.size(), " fields, got ", e.key.n);
    if (e.config.n != static_cast<int>(fam->param_names.size()))
      fail(where(), e.family, " configs have ", fam->param_names.size(), " fields, got ", e.config.n);
    if (fam->bucket) {
      const Key b = fam->bucket(e.key);
      if (!(b == e.key)) {
        std::string s;
        for (int i = 0; i < b.n; ++i) s += detail::concat(i ? " " : "", fam->key_names[static_cast<size_t>(i)], "=", b[i]);
        fail(where(), "key is not a bucket value (its bucket is '", s, "'); no launch would ever match it");
      }
    }
    if (fam->check) {
      const std::string why = fam->check(e.config);
      if (!why.empty()) fail(where(), "invalid ", e.family, " config: ", why);
    }
  }
}

void Table::set(const std::string& family, const Key& key, const Config& config) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), std::pair{family, key}, [](const Entry& a, const auto& b) {
    return a.family != b.first ? a.family < b.first : a.key < b.second;
  });
  if (it != entries_.end() && it->family == family && it->key == key) {
    it->config = config;
    return;
  }
  Entry e;
  e.family = family;
  e.key = key;
  e.config = config;
  entries_.insert(it, std::move(e));
}

const Config* Table::find(std::string_view family, const Key& key) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), family,
                             [](const Entry& a, std::string_view f) { return a.family < f; });
  auto end = it;
  while (end != entries_.end() && end->family == family) ++end;
  auto hit = std::lower_bound(it, end, key, [](const Entry& a, const Key& k) { return a.key < k; });
  return hit != end && hit->key == key ? &hit->config : nullptr;
}

std::string Table::format(const std::vector<Family>& families, const std::string& header_comment) const {
  std::string out;
  if (!header_comment.empty()) {
    std::istringstream in(header_comment);
    for (std::string l; std::getline(in, l);) out += "# " + l + "\n";
  }
  out += "arch " + arch_ + "\n";
  std::string last;
  for (const Entry& e : entries_) {
    const Family* fam = nullptr;
    for (const Family& f : families)
      if (f.name == e.family) fam = &f;
    if (!fam || static_cast<int>(fam->key_names.size()) != e.key.n ||
        static_cast<int>(fam->param_names.size()) != e.config.n)
      continue;
    if (e.family != last) {
      out += "\n# " + fam->description + "\n";
      last = e.family;
    }
    std::string line = e.family;
    for (int i = 0; i < e.key.n; ++i) line += detail::concat(" ", fam->key_names[static_cast<size_t>(i)], "=", e.key[i]);
    line += " ->";
    for (int i = 0; i < e.config.n; ++i)
      line += detail::concat(" ", fam->param_names[static_cast<size_t>(i)], "=", e.config[i]);
    out += line + "\n";
  }
  return out;
}

// ---------------------------------------------------------------- registry and forcing

namespace {
std::mutex g_mu;
std::map<uint16_t, std::unique_ptr<Tunables>>& registry() {
  static std::map<uint16_t, std::unique_ptr<Tunables>> r;
  return r;
}
thread_local const ForceConfig* t_forced = nullptr;
}  // namespace

void set_tunables(uint16_t backend_id, Tunables t) {
  std::lock_guard lk(g_mu);
  registry()[backend_id] = std::make_unique<Tunables>(std::move(t));
}

const Tunables* tunables(uint16_t backend_id) {
  std::lock_guard lk(g_mu);
  auto it = registry().find(backend_id);
  return it == registry().end() ? nullptr : it->second.get();
}

ForceConfig::ForceConfig(std::string family, Config c) : family_(std::move(family)), config_(c), prev_(t_forced) {
  t_forced = this;
}
ForceConfig::~ForceConfig() { t_forced = prev_; }

const Config* forced(std::string_view family) {
  for (const ForceConfig* f = t_forced; f; f = f->prev_)
    if (f->family_ == family) return &f->config_;
  return nullptr;
}

}  // namespace flagos::tuning
