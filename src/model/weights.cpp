// WeightStore: weights by Hugging Face name.
#include <algorithm>

#include "flagos/error.h"
#include "flagos/model.h"

namespace flagos::model {

void WeightStore::add(const std::string& name, Tensor t) {
  FLAGOS_CHECK(t.defined(), "weights: tensor '", name, "' from ", source, " is undefined");
  auto [it, inserted] = tensors_.emplace(name, std::move(t));
  if (!inserted) fail<InvalidArgument>(source, ": duplicate tensor name '", name, "'");
}

void WeightStore::replace(const std::string& name, Tensor t) {
  auto it = tensors_.find(name);
  FLAGOS_CHECK(it != tensors_.end(), "weights: cannot replace tensor '", name, "' of ", source, ": it is absent");
  FLAGOS_CHECK(t.defined() && t.shape() == it->second.shape() && t.dtype() == it->second.dtype(), "weights: tensor '",
               name, "' of ", source, " is ", it->second.describe(), ", cannot replace it by ",
               t.defined() ? t.describe() : std::string("an undefined tensor"));
  it->second = std::move(t);
}

const Tensor* WeightStore::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const Tensor& WeightStore::get(const std::string& name) const {
  if (const Tensor* t = find(name)) return *t;
  // Name the closest few by shared prefix to make a mapping mistake obvious.
  std::vector<std::pair<size_t, std::string>> near;
  for (const auto& [n, t] : tensors_) {
    size_t k = 0;
    while (k < n.size() && k < name.size() && n[k] == name[k]) ++k;
    near.emplace_back(k, n);
  }
  std::sort(near.begin(), near.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string hint;
  for (size_t i = 0; i < near.size() && i < 3; ++i) hint += (i ? ", " : "") + near[i].second;
  fail<InvalidArgument>(source, ": missing tensor '", name, "' (", tensors_.size(), " tensors", hint.empty() ? "" : "; nearest: ",
                        hint, ")");
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> r;
  r.reserve(tensors_.size());
  for (const auto& [n, t] : tensors_) r.push_back(n);
  return r;
}

int64_t WeightStore::total_bytes() const {
  int64_t b = 0;
  for (const auto& [n, t] : tensors_) b += static_cast<int64_t>(t.nbytes());
  return b;
}

int64_t WeightStore::total_params() const {
  int64_t p = 0;
  for (const auto& [n, t] : tensors_) p += t.numel();
  return p;
}

}  // namespace flagos::model
