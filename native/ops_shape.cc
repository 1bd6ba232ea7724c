// Views, reshaping, indexing, joining and padding.
#include "common.h"

#include <ATen/ATen.h>

namespace ns {

static int64_t CheckDim(Napi::Env env, const at::Tensor& x, int64_t d, const char* op, bool plusOne = false) {
  int64_t n = x.dim() + (plusOne ? 1 : 0);
  if (n == 0) n = 1;
  if (d < -n || d >= n) {
    ThrowError(env, std::string(op) + ": dim " + std::to_string(d) + " out of range for shape " + ShapeString(x.sizes()));
  }
  return d < 0 ? d + n : d;
}

NS_FN(Reshape) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "reshape", "x");
  auto s = ArgInts(info, 1, "reshape", "shape");
  NS_TRY return Out(env, x.reshape(s)); NS_CATCH(env)
}

NS_FN(View) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "view", "x");
  auto s = ArgInts(info, 1, "view", "shape");
  NS_TRY return Out(env, x.view(s)); NS_CATCH(env)
}

NS_FN(Flatten) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "flatten", "x");
  int64_t a = ArgInt(info, 1, "flatten", "startDim");
  int64_t b = ArgInt(info, 2, "flatten", "endDim");
  NS_TRY return Out(env, x.flatten(a, b)); NS_CATCH(env)
}

NS_FN(Squeeze) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "squeeze", "x");
  if (info.Length() < 2 || IsNullish(info[1])) {
    NS_TRY return Out(env, x.squeeze()); NS_CATCH(env)
  }
  int64_t d = CheckDim(env, x, ArgInt(info, 1, "squeeze", "dim"), "squeeze");
  NS_TRY return Out(env, x.squeeze(d)); NS_CATCH(env)
}

NS_FN(Unsqueeze) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "unsqueeze", "x");
  int64_t d = CheckDim(env, x, ArgInt(info, 1, "unsqueeze", "dim"), "unsqueeze", true);
  NS_TRY return Out(env, x.unsqueeze(d)); NS_CATCH(env)
}

NS_FN(Permute) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "permute", "x");
  auto p = ArgInts(info, 1, "permute", "dims");
  if (static_cast<int64_t>(p.size()) != x.dim()) {
    ThrowError(env, "permute: dims has " + std::to_string(p.size()) + " entries but x has shape " + ShapeString(x.sizes()));
  }
  NS_TRY return Out(env, x.permute(p)); NS_CATCH(env)
}

NS_FN(Transpose) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "transpose", "x");
  int64_t a = CheckDim(env, x, ArgInt(info, 1, "transpose", "dim0"), "transpose");
  int64_t b = CheckDim(env, x, ArgInt(info, 2, "transpose", "dim1"), "transpose");
  NS_TRY return Out(env, x.transpose(a, b)); NS_CATCH(env)
}

NS_FN(Expand) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "expand", "x");
  auto s = ArgInts(info, 1, "expand", "shape");
  NS_TRY return Out(env, x.expand(s)); NS_CATCH(env)
}

// slice(x, dim, start, end, step): end may be null (to the end); negative indices count from the end.
NS_FN(Slice) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "slice", "x");
  int64_t d = CheckDim(env, x, ArgInt(info, 1, "slice", "dim"), "slice");
  int64_t start = ArgInt(info, 2, "slice", "start");
  c10::optional<int64_t> end;
  if (info.Length() > 3 && !IsNullish(info[3])) end = ArgInt(info, 3, "slice", "end");
  int64_t step = ArgInt(info, 4, "slice", "step");
  if (step <= 0) ThrowError(env, "slice: step must be positive, got " + std::to_string(step));
  NS_TRY return Out(env, at::slice(x, d, start, end, step)); NS_CATCH(env)
}

NS_FN(Select) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "select", "x");
  int64_t d = CheckDim(env, x, ArgInt(info, 1, "select", "dim"), "select");
  int64_t i = ArgInt(info, 2, "select", "index");
  if (x.dim() == 0) ThrowError(env, "select: x must have at least one dimension");
  int64_t n = x.size(d);
  if (i < -n || i >= n) ThrowError(env, "select: index " + std::to_string(i) + " out of range for dim " + std::to_string(d) + " of size " + std::to_string(n));
  NS_TRY return Out(env, x.select(d, i)); NS_CATCH(env)
}

NS_FN(IndexSelect) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "indexSelect", "x");
  int64_t d = CheckDim(env, x, ArgInt(info, 1, "indexSelect", "dim"), "indexSelect");
  const at::Tensor& idx = ArgTensor(info, 2, "indexSelect", "index");
  NS_TRY return Out(env, at::index_select(x, d, idx)); NS_CATCH(env)
}

NS_FN(Narrow) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "narrow", "x");
  int64_t d = CheckDim(env, x, ArgInt(info, 1, "narrow", "dim"), "narrow");
  int64_t s = ArgInt(info, 2, "narrow", "start");
  int64_t l = ArgInt(info, 3, "narrow", "length");
  NS_TRY return Out(env, x.narrow(d, s, l)); NS_CATCH(env)
}

NS_FN(Flip) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "flip", "x");
  auto dims = ArgInts(info, 1, "flip", "dims");
  NS_TRY return Out(env, at::flip(x, dims)); NS_CATCH(env)
}

NS_FN(Rot90) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "rot90", "x");
  int64_t k = ArgInt(info, 1, "rot90", "k");
  auto dims = ArgInts(info, 2, "rot90", "dims");
  NS_TRY return Out(env, at::rot90(x, k, dims)); NS_CATCH(env)
}

NS_FN(Repeat) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "repeat", "x");
  auto r = ArgInts(info, 1, "repeat", "repeats");
  NS_TRY return Out(env, x.repeat(r)); NS_CATCH(env)
}

NS_FN(Cat) {
  Napi::Env env = info.Env();
  auto ts = ArgTensors(info, 0, "cat", "tensors");
  int64_t d = ArgInt(info, 1, "cat", "dim");
  if (ts.empty()) ThrowError(env, "cat: tensors must not be empty");
  NS_TRY return Out(env, at::cat(ts, d)); NS_CATCH(env)
}

NS_FN(Stack) {
  Napi::Env env = info.Env();
  auto ts = ArgTensors(info, 0, "stack", "tensors");
  int64_t d = ArgInt(info, 1, "stack", "dim");
  if (ts.empty()) ThrowError(env, "stack: tensors must not be empty");
  NS_TRY return Out(env, at::stack(ts, d)); NS_CATCH(env)
}

// pad(x, pads, mode, value): pads in PyTorch order (last dim first, (left, right) pairs).
NS_FN(Pad) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "pad", "x");
  auto pads = ArgInts(info, 1, "pad", "pads");
  std::string mode = ArgString(info, 2, "pad", "mode");
  double value = ArgNumber(info, 3, "pad", "value");
  if (pads.size() % 2 != 0 || static_cast<int64_t>(pads.size()) > 2 * x.dim()) {
    ThrowError(env, "pad: pads must have an even length of at most 2*ndim, got " + std::to_string(pads.size()) + " for shape " + ShapeString(x.sizes()));
  }
  if (mode != "constant" && mode != "reflect" && mode != "replicate" && mode != "circular") {
    ThrowError(env, "pad: mode must be constant, reflect, replicate or circular, got '" + mode + "'");
  }
  NS_TRY
  if (mode == "constant") return Out(env, at::constant_pad_nd(x, pads, value));
  return Out(env, at::pad(x, pads, mode, c10::nullopt));
  NS_CATCH(env)
}

NS_FN(Gather) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "gather", "x");
  int64_t d = ArgInt(info, 1, "gather", "dim");
  const at::Tensor& idx = ArgTensor(info, 2, "gather", "index");
  NS_TRY return Out(env, at::gather(x, d, idx)); NS_CATCH(env)
}

NS_FN(MaskedFill) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "maskedFill", "x");
  const at::Tensor& m = ArgTensor(info, 1, "maskedFill", "mask");
  double v = ArgNumber(info, 2, "maskedFill", "value");
  NS_TRY return Out(env, at::masked_fill(x, m, v)); NS_CATCH(env)
}

NS_FN(MaskedSelect) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "maskedSelect", "x");
  const at::Tensor& m = ArgTensor(info, 1, "maskedSelect", "mask");
  NS_TRY return Out(env, at::masked_select(x, m)); NS_CATCH(env)
}

NS_FN(OneHot) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "oneHot", "x");
  int64_t n = ArgInt(info, 1, "oneHot", "numClasses");
  NS_TRY return Out(env, at::one_hot(x, n)); NS_CATCH(env)
}

NS_FN(Tril) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "tril", "x");
  int64_t k = ArgInt(info, 1, "tril", "diagonal");
  bool upper = ArgBool(info, 2, "tril", "upper");
  NS_TRY return Out(env, upper ? at::triu(x, k) : at::tril(x, k)); NS_CATCH(env)
}

void InitShape(Napi::Env env, Napi::Object exports) {
  NS_EXPORT(exports, "reshape", Reshape);
  NS_EXPORT(exports, "view", View);
  NS_EXPORT(exports, "flatten", Flatten);
  NS_EXPORT(exports, "squeeze", Squeeze);
  NS_EXPORT(exports, "unsqueeze", Unsqueeze);
  NS_EXPORT(exports, "permute", Permute);
  NS_EXPORT(exports, "transpose", Transpose);
  NS_EXPORT(exports, "expand", Expand);
  NS_EXPORT(exports, "slice", Slice);
  NS_EXPORT(exports, "select", Select);
  NS_EXPORT(exports, "indexSelect", IndexSelect);
  NS_EXPORT(exports, "narrow", Narrow);
  NS_EXPORT(exports, "flip", Flip);
  NS_EXPORT(exports, "rot90", Rot90);
  NS_EXPORT(exports, "repeat", Repeat);
  NS_EXPORT(exports, "cat", Cat);
  NS_EXPORT(exports, "stack", Stack);
  NS_EXPORT(exports, "pad", Pad);
  NS_EXPORT(exports, "gather", Gather);
  NS_EXPORT(exports, "maskedFill", MaskedFill);
  NS_EXPORT(exports, "maskedSelect", MaskedSelect);
  NS_EXPORT(exports, "oneHot", OneHot);
  NS_EXPORT(exports, "tril", Tril);
}

}  // namespace ns
