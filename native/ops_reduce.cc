// Reductions, arg-reductions, top-k, sorting and cumulative sums.
#include "common.h"
#include "op_table.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>

namespace ns {

// any, all and prod take one dim at a time in libtorch 1.13: reduce the highest dims first, so
// the remaining dim numbers stay valid.
template <typename F>
static at::Tensor EachDim(const at::Tensor& x, const std::vector<int64_t>& dims, bool keepdim, F reduceOne) {
  std::vector<int64_t> ds = dims;
  for (auto& d : ds) d = d < 0 ? d + x.dim() : d;
  std::sort(ds.rbegin(), ds.rend());
  at::Tensor r = x;
  for (int64_t d : ds) r = reduceOne(r, d, keepdim);
  return r;
}

// reduce(code, x, dims | null, keepdim, unbiased): dims null reduces over every dimension; codes
// are ReduceOp (native/ops.def).
NS_FN(Reduce) {
  Napi::Env env = info.Env();
  int64_t op = ArgInt(info, 0, "reduce", "op");
  if (op < 0 || op >= static_cast<int64_t>(ReduceOp::kCount)) ThrowError(env, "reduce: unknown op code " + std::to_string(op));
  const char* name = kReduceNames[op];
  const at::Tensor& x = ArgTensor(info, 1, name, "x");
  bool allDims = info.Length() < 3 || IsNullish(info[2]);
  std::vector<int64_t> dims = allDims ? std::vector<int64_t>() : ArgInts(info, 2, name, "dim");
  bool keepdim = info.Length() > 3 && !IsNullish(info[3]) ? ArgBool(info, 3, name, "keepdim") : false;
  bool unbiased = info.Length() > 4 && !IsNullish(info[4]) ? ArgBool(info, 4, name, "unbiased") : true;
  NS_TRY
  if (allDims) {
    dims.resize(x.dim());
    std::iota(dims.begin(), dims.end(), 0);
  }
  for (int64_t d : dims) {
    if (d < -x.dim() || d >= std::max<int64_t>(x.dim(), 1)) {
      ThrowError(env, std::string(name) + ": dim " + std::to_string(d) + " out of range for shape " + ShapeString(x.sizes()));
    }
  }
  switch (static_cast<ReduceOp>(op)) {
#define NS_REDUCE(name, expr) \
  case ReduceOp::name:        \
    return Out(env, expr);
#include "ops.def"
    case ReduceOp::kCount: break;
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
