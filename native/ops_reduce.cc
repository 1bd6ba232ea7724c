// Reductions, arg-reductions, top-k, sorting and cumulative sums.
#include "common.h"

#include <ATen/ATen.h>

#include <numeric>

namespace ns {

static const char* kReduceNames[] = {"sum", "mean", "amax", "amin", "std", "var", "logsumexp", "any", "all", "prod"};
static constexpr int kNumReduce = sizeof(kReduceNames) / sizeof(kReduceNames[0]);

// reduce(op, x, dims | null, keepdim, unbiased): dims null reduces over every dimension.
NS_FN(Reduce) {
  Napi::Env env = info.Env();
  int64_t op = ArgInt(info, 0, "reduce", "op");
  if (op < 0 || op >= kNumReduce) ThrowError(env, "reduce: unknown op code " + std::to_string(op));
  const char* name = kReduceNames[op];
  const at::Tensor& x = ArgTensor(info, 1, name, "x");
  bool all = info.Length() < 3 || IsNullish(info[2]);
  std::vector<int64_t> dims = all ? std::vector<int64_t>() : ArgInts(info, 2, name, "dim");
  bool keepdim = info.Length() > 3 && !IsNullish(info[3]) ? ArgBool(info, 3, name, "keepdim") : false;
  bool unbiased = info.Length() > 4 && !IsNullish(info[4]) ? ArgBool(info, 4, name, "unbiased") : true;
  NS_TRY
  if (all) {
    dims.resize(x.dim());
    std::iota(dims.begin(), dims.end(), 0);
  }
  for (int64_t d : dims) {
    if (d < -x.dim() || d >= std::max<int64_t>(x.dim(), 1)) {
      ThrowError(env, std::string(name) + ": dim " + std::to_string(d) + " out of range for shape " + ShapeString(x.sizes()));
    }
  }
  switch (op) {
    case 0: return Out(env, all && !keepdim ? at::sum(x) : at::sum(x, dims, keepdim));
    case 1: return Out(env, all && !keepdim ? at::mean(x) : at::mean(x, dims, keepdim));
    case 2: return Out(env, at::amax(x, dims, keepdim));
    case 3: return Out(env, at::amin(x, dims, keepdim));
    case 4: return Out(env, all && !keepdim ? at::std(x, unbiased) : at::std(x, at::OptionalIntArrayRef(dims), unbiased, keepdim));
    case 5: return Out(env, all && !keepdim ? at::var(x, unbiased) : at::var(x, at::OptionalIntArrayRef(dims), unbiased, keepdim));
    case 6: return Out(env, at::logsumexp(x, dims, keepdim));
    case 7:
    case 8:
    case 9: {
      if (all && !keepdim) return Out(env, op == 7 ? at::any(x) : op == 8 ? at::all(x) : at::prod(x));
      at::Tensor r = x;
      // These take one dim at a time in libtorch 1.13; reduce the highest dims first.
      std::vector<int64_t> ds = dims;
      for (auto& d : ds) d = d < 0 ? d + x.dim() : d;
      std::sort(ds.rbegin(), ds.rend());
      for (int64_t d : ds) r = op == 7 ? at::any(r, d, keepdim) : op == 8 ? at::all(r, d, keepdim) : at::prod(r, d, keepdim);
      return Out(env, r);
    }
  }
  return env.Undefined();
  NS_CATCH(env)
}

// norm(x, p, dims | null, keepdim): the vector p-norm.
NS_FN(Norm) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "norm", "x");
  double p = ArgNumber(info, 1, "norm", "p");
  bool all = info.Length() < 3 || IsNullish(info[2]);
  std::vector<int64_t> dims = all ? std::vector<int64_t>() : ArgInts(info, 2, "norm", "dim");
  bool keepdim = info.Length() > 3 && !IsNullish(info[3]) ? ArgBool(info, 3, "norm", "keepdim") : false;
  NS_TRY
  if (all) return Out(env, at::linalg_vector_norm(x, p, c10::nullopt, keepdim));
  return Out(env, at::linalg_vector_norm(x, p, at::OptionalIntArrayRef(dims), keepdim));
  NS_CATCH(env)
}

// argmax/argmin(x, dim | null, keepdim, isMin)
NS_FN(ArgReduce) {
  Napi::Env env = info.Env();
  bool isMin = ArgBool(info, 3, "argmax", "isMin");
  const char* name = isMin ? "argmin" : "argmax";
  const at::Tensor& x = ArgTensor(info, 0, name, "x");
  c10::optional<int64_t> dim;
  if (info.Length() > 1 && !IsNullish(info[1])) dim = ArgInt(info, 1, name, "dim");
  bool keepdim = ArgBool(info, 2, name, "keepdim");
  NS_TRY return Out(env, isMin ? at::argmin(x, dim, keepdim) : at::argmax(x, dim, keepdim)); NS_CATCH(env)
}

// topk(x, k, dim, largest, sorted) -> [values, indices]
NS_FN(Topk) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "topk", "x");
  int64_t k = ArgInt(info, 1, "topk", "k");
  int64_t dim = ArgInt(info, 2, "topk", "dim");
  bool largest = ArgBool(info, 3, "topk", "largest");
  bool sorted = ArgBool(info, 4, "topk", "sorted");
  NS_TRY
  if (x.dim() > 0) {
    int64_t d = dim < 0 ? dim + x.dim() : dim;
    if (d < 0 || d >= x.dim()) ThrowError(env, "topk: dim " + std::to_string(dim) + " out of range for shape " + ShapeString(x.sizes()));
    if (k < 0 || k > x.size(d)) ThrowError(env, "topk: k=" + std::to_string(k) + " out of range for dim of size " + std::to_string(x.size(d)));
  }
  auto r = at::topk(x, k, dim, largest, sorted);
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Out(env, std::get<0>(r)));
  a.Set(1u, Out(env, std::get<1>(r)));
  return a;
  NS_CATCH(env)
}

// sort(x, dim, descending) -> [values, indices]
NS_FN(Sort) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "sort", "x");
  int64_t dim = ArgInt(info, 1, "sort", "dim");
  bool desc = ArgBool(info, 2, "sort", "descending");
  NS_TRY
  auto r = at::sort(x, dim, desc);
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Out(env, std::get<0>(r)));
  a.Set(1u, Out(env, std::get<1>(r)));
  return a;
  NS_CATCH(env)
}

NS_FN(Cumsum) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "cumsum", "x");
  int64_t dim = ArgInt(info, 1, "cumsum", "dim");
  NS_TRY return Out(env, at::cumsum(x, dim)); NS_CATCH(env)
}

void InitReduce(Napi::Env env, Napi::Object exports) {
  NS_EXPORT(exports, "reduce", Reduce);
  NS_EXPORT(exports, "norm", Norm);
  NS_EXPORT(exports, "argReduce", ArgReduce);
  NS_EXPORT(exports, "topk", Topk);
  NS_EXPORT(exports, "sort", Sort);
  NS_EXPORT(exports, "cumsum", Cumsum);
}

}  // namespace ns
