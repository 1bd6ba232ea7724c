// Neural-network ops: matmul/linear, convolutions, normalisation, pooling, resampling, dropout,
// softmax and losses. Each calls the same ATen entry point as torch.nn.functional.
#include "common.h"
#include "op_table.h"

#include <ATen/ATen.h>

namespace ns {

static void CheckDimCount(Napi::Env env, const at::Tensor& t, int64_t want, const char* op, const char* arg) {
  if (t.dim() != want) {
    ThrowError(env, std::string(op) + ": " + arg + " must be " + std::to_string(want) + "-D, got " + ShapeString(t.sizes()));
  }
}

static std::vector<int64_t> Spatial(Napi::Env env, std::vector<int64_t> v, size_t n, const char* op, const char* arg) {
  if (v.size() == 1) v.assign(n, v[0]);
  if (v.size() != n) ThrowError(env, std::string(op) + ": " + arg + " must have 1 or " + std::to_string(n) + " entries, got " + std::to_string(v.size()));
  return v;
}

// The losses' `reduction` argument: a code of native/ops.def's reduction family, mapped to
// at::Reduction (validated here: libtorch would read any integer as an enum value).
static int64_t ArgReduction(const Napi::CallbackInfo& info, size_t i, const char* op) {
  int64_t c = ArgInt(info, i, op, "reduction");
  if (c < 0 || c >= Count(kReductionNames)) ThrowError(info.Env(), std::string(op) + ": unknown reduction code " + std::to_string(c));
  return kReductions[c];
}

NS_FN(Matmul) {
  Napi::Env env = info.Env();
  const at::Tensor& a = ArgTensor(info, 0, "matmul", "a");
  const at::Tensor& b = ArgTensor(info, 1, "matmul", "b");
  if (a.dim() == 0 || b.dim() == 0) ThrowError(env, "matmul: a and b must be at least 1-D, got " + ShapeString(a.sizes()) + " and " + ShapeString(b.sizes()));
  int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  if (ka != kb) ThrowError(env, "matmul: shapes " + ShapeString(a.sizes()) + " and " + ShapeString(b.sizes()) + " cannot be multiplied (" + std::to_string(ka) + " != " + std::to_string(kb) + ")");
  NS_TRY return Out(env, at::matmul(a, b)); NS_CATCH(env)
}

NS_FN(Linear) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "linear", "x");
  const at::Tensor& w = ArgTensor(info, 1, "linear", "weight");
  auto b = ArgOptTensor(info, 2, "linear", "bias");
  CheckDimCount(env, w, 2, "linear", "weight");
  if (x.dim() == 0 || x.size(-1) != w.size(1)) ThrowError(env, "linear: x's last dim must be " + std::to_string(w.size(1)) + " (weight " + ShapeString(w.sizes()) + "), got " + ShapeString(x.sizes()));
  NS_TRY return Out(env, at::linear(x, w, b)); NS_CATCH(env)
}

// conv(x, w, b, stride, padding, dilation, groups, nd)
NS_FN(Conv) {
  Napi::Env env = info.Env();
  int64_t nd = ArgInt(info, 7, "conv", "nd");
  const char* op = nd == 3 ? "conv3d" : nd == 2 ? "conv2d" : "conv1d";
  const at::Tensor& x = ArgTensor(info, 0, op, "x");
  const at::Tensor& w = ArgTensor(info, 1, op, "weight");
  auto b = ArgOptTensor(info, 2, op, "bias");
  auto stride = Spatial(env, ArgInts(info, 3, op, "stride"), nd, op, "stride");
  auto padding = Spatial(env, ArgInts(info, 4, op, "padding"), nd, op, "padding");
  auto dilation = Spatial(env, ArgInts(info, 5, op, "dilation"), nd, op, "dilation");
  int64_t groups = ArgInt(info, 6, op, "groups");
  CheckDimCount(env, x, nd + 2, op, "x");
  CheckDimCount(env, w, nd + 2, op, "weight");
  if (groups < 1) ThrowError(env, std::string(op) + ": groups must be >= 1");
  if (x.size(1) != w.size(1) * groups) {
    ThrowError(env, std::string(op) + ": x has " + std::to_string(x.size(1)) + " channels but weight " + ShapeString(w.sizes()) +
                        " with groups=" + std::to_string(groups) + " expects " + std::to_string(w.size(1) * groups));
  }
  if (b && (b->dim() != 1 || b->size(0) != w.size(0))) ThrowError(env, std::string(op) + ": bias must have shape [" + std::to_string(w.size(0)) + "], got " + ShapeString(b->sizes()));
  NS_TRY
  if (nd == 2) return Out(env, at::conv2d(x, w, b, stride, padding, dilation, groups));
  if (nd == 3) return Out(env, at::conv3d(x, w, b, stride, padding, dilation, groups));
  return Out(env, at::conv1d(x, w, b, stride, padding, dilation, groups));
  NS_CATCH(env)
}

// convTranspose(x, w, b, stride, padding, outputPadding, groups, dilation, nd)
NS_FN(ConvTranspose) {
  Napi::Env env = info.Env();
  int64_t nd = ArgInt(info, 8, "convTranspose", "nd");
  const char* op = nd == 3 ? "convTranspose3d" : nd == 2 ? "convTranspose2d" : "convTranspose1d";
  const at::Tensor& x = ArgTensor(info, 0, op, "x");
  const at::Tensor& w = ArgTensor(info, 1, op, "weight");
  auto b = ArgOptTensor(info, 2, op, "bias");
  auto stride = Spatial(env, ArgInts(info, 3, op, "stride"), nd, op, "stride");
  auto padding = Spatial(env, ArgInts(info, 4, op, "padding"), nd, op, "padding");
  auto outPad = Spatial(env, ArgInts(info, 5, op, "outputPadding"), nd, op, "outputPadding");
  int64_t groups = ArgInt(info, 6, op, "groups");
  auto dilation = Spatial(env, ArgInts(info, 7, op, "dilation"), nd, op, "dilation");
  CheckDimCount(env, x, nd + 2, op, "x");
  CheckDimCount(env, w, nd + 2, op, "weight");
  if (x.size(1) != w.size(0)) {
    ThrowError(env, std::string(op) + ": x has " + std::to_string(x.size(1)) + " channels but weight " + ShapeString(w.sizes()) + " expects " + std::to_string(w.size(0)));
  }
  NS_TRY
  if (nd == 2) return Out(env, at::conv_transpose2d(x, w, b, stride, padding, outPad, groups, dilation));
  if (nd == 3) return Out(env, at::conv_transpose3d(x, w, b, stride, padding, outPad, groups, dilation));
  return Out(env, at::conv_transpose1d(x, w, b, stride, padding, outPad, groups, dilation));
  NS_CATCH(env)
}

static void CheckChannelVec(Napi::Env env, const c10::optional<at::Tensor>& t, int64_t c, const char* op, const char* arg) {
  if (t && (t->dim() != 1 || t->size(0) != c)) {
    ThrowError(env, std::string(op) + ": " + arg + " must have shape [" + std::to_string(c) + "], got " + ShapeString(t->sizes()));
  }
}

// batchNorm(x, runningMean, runningVar, weight, bias, training, momentum, eps)
NS_FN(BatchNorm) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "batchNorm", "x");
  auto rm = ArgOptTensor(info, 1, "batchNorm", "runningMean");
  auto rv = ArgOptTensor(info, 2, "batchNorm", "runningVar");
  auto w = ArgOptTensor(info, 3, "batchNorm", "weight");
  auto b = ArgOptTensor(info, 4, "batchNorm", "bias");
  bool training = ArgBool(info, 5, "batchNorm", "training");
  double momentum = ArgNumber(info, 6, "batchNorm", "momentum");
  double eps = ArgNumber(info, 7, "batchNorm", "eps");
  if (x.dim() < 2) ThrowError(env, "batchNorm: x must be at least 2-D, got " + ShapeString(x.sizes()));
  int64_t c = x.size(1);
  CheckChannelVec(env, rm, c, "batchNorm", "runningMean");
  CheckChannelVec(env, rv, c, "batchNorm", "runningVar");
  CheckChannelVec(env, w, c, "batchNorm", "weight");
  CheckChannelVec(env, b, c, "batchNorm", "bias");
  if (!training && (!rm || !rv)) ThrowError(env, "batchNorm: runningMean and runningVar are required when training is false");
  if (training && x.numel() / c <= 1) ThrowError(env, "batchNorm: expected more than 1 value per channel when training, got " + ShapeString(x.sizes()));
  NS_TRY
  return Out(env, at::batch_norm(x, w, b, rm, rv, training, momentum, eps, /*cudnn_enabled=*/true));
  NS_CATCH(env)
}

// instanceNorm(x, runningMean, runningVar, weight, bias, useInputStats, momentum, eps)
NS_FN(InstanceNorm) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "instanceNorm", "x");
  auto rm = ArgOptTensor(info, 1, "instanceNorm", "runningMean");
  auto rv = ArgOptTensor(info, 2, "instanceNorm", "runningVar");
  auto w = ArgOptTensor(info, 3, "instanceNorm", "weight");
  auto b = ArgOptTensor(info, 4, "instanceNorm", "bias");
  bool useInput = ArgBool(info, 5, "instanceNorm", "useInputStats");
  double momentum = ArgNumber(info, 6, "instanceNorm", "momentum");
  double eps = ArgNumber(info, 7, "instanceNorm", "eps");
  if (x.dim() < 3) ThrowError(env, "instanceNorm: x must be at least 3-D, got " + ShapeString(x.sizes()));
  CheckChannelVec(env, w, x.size(1), "instanceNorm", "weight");
  CheckChannelVec(env, b, x.size(1), "instanceNorm", "bias");
  NS_TRY return Out(env, at::instance_norm(x, w, b, rm, rv, useInput, momentum, eps, true)); NS_CATCH(env)
}

// groupNorm(x, groups, weight, bias, eps)
NS_FN(GroupNorm) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "groupNorm", "x");
  int64_t g = ArgInt(info, 1, "groupNorm", "groups");
  auto w = ArgOptTensor(info, 2, "groupNorm", "weight");
  auto b = ArgOptTensor(info, 3, "groupNorm", "bias");
  double eps = ArgNumber(info, 4, "groupNorm", "eps");
  if (x.dim() < 2) ThrowError(env, "groupNorm: x must be at least 2-D, got " + ShapeString(x.sizes()));
  if (g < 1 || x.size(1) % g != 0) ThrowError(env, "groupNorm: groups=" + std::to_string(g) + " must divide the " + std::to_string(x.size(1)) + " channels");
  CheckChannelVec(env, w, x.size(1), "groupNorm", "weight");
  CheckChannelVec(env, b, x.size(1), "groupNorm", "bias");
  NS_TRY return Out(env, at::group_norm(x, g, w, b, eps, true)); NS_CATCH(env)
}

// layerNorm(x, normalizedShape, weight, bias, eps)
NS_FN(LayerNorm) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "layerNorm", "x");
  auto shape = ArgInts(info, 1, "layerNorm", "normalizedShape");
  auto w = ArgOptTensor(info, 2, "layerNorm", "weight");
  auto b = ArgOptTensor(info, 3, "layerNorm", "bias");
  double eps = ArgNumber(info, 4, "layerNorm", "eps");
  NS_TRY return Out(env, at::layer_norm(x, shape, w, b, eps, true)); NS_CATCH(env)
}

// maxPool(x, kernel, stride, padding, dilation, ceilMode, nd)
NS_FN(MaxPool) {
  Napi::Env env = info.Env();
  int64_t nd = ArgInt(info, 6, "maxPool", "nd");
  const char* op = nd == 3 ? "maxPool3d" : "maxPool2d";
  const at::Tensor& x = ArgTensor(info, 0, op, "x");
  auto k = Spatial(env, ArgInts(info, 1, op, "kernelSize"), nd, op, "kernelSize");
  auto s = Spatial(env, ArgInts(info, 2, op, "stride"), nd, op, "stride");
  auto p = Spatial(env, ArgInts(info, 3, op, "padding"), nd, op, "padding");
  auto d = Spatial(env, ArgInts(info, 4, op, "dilation"), nd, op, "dilation");
  bool ceil = ArgBool(info, 5, op, "ceilMode");
  if (x.dim() != nd + 2 && x.dim() != nd + 1) ThrowError(env, std::string(op) + ": x must be " + std::to_string(nd + 2) + "-D, got " + ShapeString(x.sizes()));
  NS_TRY
  return Out(env, nd == 3 ? at::max_pool3d(x, k, s, p, d, ceil) : at::max_pool2d(x, k, s, p, d, ceil));
  NS_CATCH(env)
}

// avgPool(x, kernel, stride, padding, ceilMode, countIncludePad, nd)
NS_FN(AvgPool) {
  Napi::Env env = info.Env();
  int64_t nd = ArgInt(info, 6, "avgPool", "nd");
  const char* op = nd == 3 ? "avgPool3d" : "avgPool2d";
  const at::Tensor& x = ArgTensor(info, 0, op, "x");
  auto k = Spatial(env, ArgInts(info, 1, op, "kernelSize"), nd, op, "kernelSize");
  auto s = Spatial(env, ArgInts(info, 2, op, "stride"), nd, op, "stride");
  auto p = Spatial(env, ArgInts(info, 3, op, "padding"), nd, op, "padding");
  bool ceil = ArgBool(info, 4, op, "ceilMode");
  bool cip = ArgBool(info, 5, op, "countIncludePad");
  if (x.dim() != nd + 2 && x.dim() != nd + 1) ThrowError(env, std::string(op) + ": x must be " + std::to_string(nd + 2) + "-D, got " + ShapeString(x.sizes()));
  NS_TRY
  return Out(env, nd == 3 ? at::avg_pool3d(x, k, s, p, ceil, cip) : at::avg_pool2d(x, k, s, p, ceil, cip));
  NS_CATCH(env)
}

// adaptivePool(x, outputSize, isMax, nd)
NS_FN(AdaptivePool) {
  Napi::Env env = info.Env();
  int64_t nd = ArgInt(info, 3, "adaptivePool", "nd");
  bool isMax = ArgBool(info, 2, "adaptivePool", "isMax");
  const char* op = isMax ? (nd == 3 ? "adaptiveMaxPool3d" : "adaptiveMaxPool2d") : (nd == 3 ? "adaptiveAvgPool3d" : "adaptiveAvgPool2d");
  const at::Tensor& x = ArgTensor(info, 0, op, "x");
  auto size = Spatial(env, ArgInts(info, 1, op, "outputSize"), nd, op, "outputSize");
  if (x.dim() != nd + 2 && x.dim() != nd + 1) ThrowError(env, std::string(op) + ": x must be " + std::to_string(nd + 2) + "-D, got " + ShapeString(x.sizes()));
  NS_TRY
  if (isMax) return Out(env, std::get<0>(nd == 3 ? at::adaptive_max_pool3d(x, size) : at::adaptive_max_pool2d(x, size)));
  return Out(env, nd == 3 ? at::adaptive_avg_pool3d(x, size) : at::adaptive_avg_pool2d(x, size));
  NS_CATCH(env)
}

// interpolate(x, outputSize, mode, alignCorners, scales | null): mode an InterpMode code.
NS_FN(Interpolate) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "interpolate", "x");
  auto size = ArgInts(info, 1, "interpolate", "size");
  int64_t mode = ArgInt(info, 2, "interpolate", "mode");
  if (mode < 0 || mode >= static_cast<int64_t>(InterpMode::kCount)) ThrowError(env, "interpolate: unknown mode code " + std::to_string(mode));
  bool align = ArgBool(info, 3, "interpolate", "alignCorners");
  std::vector<c10::optional<double>> sc(size.size());
  if (info.Length() > 4 && !IsNullish(info[4])) {
    if (!info[4].IsArray()) ThrowType(env, "interpolate: scales must be an array of numbers");
    Napi::Array a = info[4].As<Napi::Array>();
    if (a.Length() != size.size()) ThrowError(env, "interpolate: scaleFactor must have one entry per spatial dim");
    for (uint32_t i = 0; i < a.Length(); i++) sc[i] = a.Get(i).As<Napi::Number>().DoubleValue();
  }
  int64_t nd = x.dim() - 2;
  if ((nd != 2 && nd != 3) || static_cast<int64_t>(size.size()) != nd) {
    ThrowError(env, "interpolate: x must be 4-D or 5-D with one size per spatial dim, got x " + ShapeString(x.sizes()) + " and size " + ShapeString(size));
  }
  NS_TRY
  if (static_cast<InterpMode>(mode) == InterpMode::nearest) {
    if (nd == 2) return Out(env, at::upsample_nearest2d(x, size, sc[0], sc[1]));
    return Out(env, at::upsample_nearest3d(x, size, sc[0], sc[1], sc[2]));
  }
  if (nd == 2) return Out(env, at::upsample_bilinear2d(x, size, align, sc[0], sc[1]));
  return Out(env, at::upsample_trilinear3d(x, size, align, sc[0], sc[1], sc[2]));
  NS_CATCH(env)
}

// dropout(x, p, training, featureWise)
NS_FN(Dropout) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "dropout", "x");
  double p = ArgNumber(info, 1, "dropout", "p");
  bool training = ArgBool(info, 2, "dropout", "training");
  bool feature = ArgBool(info, 3, "dropout", "featureWise");
  if (p < 0 || p > 1) ThrowError(env, "dropout: p must be in [0, 1], got " + std::to_string(p));
  NS_TRY return Out(env, feature ? at::feature_dropout(x, p, training) : at::dropout(x, p, training)); NS_CATCH(env)
}

NS_FN(Softmax) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "softmax", "x");
  int64_t d = ArgInt(info, 1, "softmax", "dim");
  bool log = ArgBool(info, 2, "softmax", "log");
  NS_TRY return Out(env, log ? at::log_softmax(x, d) : at::softmax(x, d)); NS_CATCH(env)
}

// bceWithLogits(logits, target, weight, posWeight, reduction)
NS_FN(BceWithLogits) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "binaryCrossEntropyWithLogits", "logits");
  const at::Tensor& t = ArgTensor(info, 1, "binaryCrossEntropyWithLogits", "target");
  auto w = ArgOptTensor(info, 2, "binaryCrossEntropyWithLogits", "weight");
  auto pw = ArgOptTensor(info, 3, "binaryCrossEntropyWithLogits", "posWeight");
  int64_t red = ArgReduction(info, 4, "binaryCrossEntropyWithLogits");
  if (!x.sizes().equals(t.sizes())) ThrowError(env, "binaryCrossEntropyWithLogits: target shape " + ShapeString(t.sizes()) + " must equal logits shape " + ShapeString(x.sizes()));
  NS_TRY return Out(env, at::binary_cross_entropy_with_logits(x, t, w, pw, red)); NS_CATCH(env)
}

// crossEntropy(logits, target, weight, reduction, ignoreIndex, labelSmoothing)
NS_FN(CrossEntropy) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "crossEntropy", "logits");
  const at::Tensor& t = ArgTensor(info, 1, "crossEntropy", "target");
  auto w = ArgOptTensor(info, 2, "crossEntropy", "weight");
  int64_t red = ArgReduction(info, 3, "crossEntropy");
  int64_t ignore = ArgInt(info, 4, "crossEntropy", "ignoreIndex");
  double ls = ArgNumber(info, 5, "crossEntropy", "labelSmoothing");
  if (x.dim() < 1) ThrowError(env, "crossEntropy: logits must be at least 1-D");
  NS_TRY
  if (w) CheckChannelVec(env, w, x.dim() == 1 ? x.size(0) : x.size(1), "crossEntropy", "weight");
  return Out(env, at::cross_entropy_loss(x, t, w, red, ignore, ls));
  NS_CATCH(env)
}

// nllLoss(logProbs, target, weight, reduction, ignoreIndex)
NS_FN(NllLoss) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "nllLoss", "input");
  const at::Tensor& t = ArgTensor(info, 1, "nllLoss", "target");
  auto w = ArgOptTensor(info, 2, "nllLoss", "weight");
  int64_t red = ArgReduction(info, 3, "nllLoss");
  int64_t ignore = ArgInt(info, 4, "nllLoss", "ignoreIndex");
  NS_TRY return Out(env, at::nll_loss_nd(x, t, w, red, ignore)); NS_CATCH(env)
}

// pointLoss(code, a, b, reduction, beta): code a PointLoss (native/ops.def).
NS_FN(PointLoss) {
  Napi::Env env = info.Env();
  int64_t kind = ArgInt(info, 0, "pointLoss", "kind");
  if (kind < 0 || kind >= static_cast<int64_t>(PointLossKind::kCount)) ThrowError(env, "pointLoss: unknown loss code " + std::to_string(kind));
  const char* op = kPointLossNames[kind];
  const at::Tensor& a = ArgTensor(info, 1, op, "input");
  const at::Tensor& b = ArgTensor(info, 2, op, "target");
  int64_t red = ArgReduction(info, 3, op);
  double beta = ArgNumber(info, 4, op, "beta");
  if (!a.sizes().equals(b.sizes())) ThrowError(env, std::string(op) + ": target shape " + ShapeString(b.sizes()) + " must equal input shape " + ShapeString(a.sizes()));
  NS_TRY
  switch (static_cast<PointLossKind>(kind)) {
#define NS_POINT_LOSS(name, expr) \
  case PointLossKind::name:       \
    return Out(env, expr);
#include "ops.def"
    case PointLossKind::kCount: break;
  }
  return env.Undefined();
  NS_CATCH(env)
}

void InitNN(Napi::Env env, Napi::Object exports) {
  NS_EXPORT(exports, "matmul", Matmul);
  NS_EXPORT(exports, "linear", Linear);
  NS_EXPORT(exports, "conv", Conv);
  NS_EXPORT(exports, "convTranspose", ConvTranspose);
  NS_EXPORT(exports, "batchNorm", BatchNorm);
  NS_EXPORT(exports, "instanceNorm", InstanceNorm);
  NS_EXPORT(exports, "groupNorm", GroupNorm);
  NS_EXPORT(exports, "layerNorm", LayerNorm);
  NS_EXPORT(exports, "maxPool", MaxPool);
  NS_EXPORT(exports, "avgPool", AvgPool);
  NS_EXPORT(exports, "adaptivePool", AdaptivePool);
  NS_EXPORT(exports, "interpolate", Interpolate);
  NS_EXPORT(exports, "dropout", Dropout);
  NS_EXPORT(exports, "softmax", Softmax);
  NS_EXPORT(exports, "bceWithLogits", BceWithLogits);
  NS_EXPORT(exports, "crossEntropy", CrossEntropy);
  NS_EXPORT(exports, "nllLoss", NllLoss);
  NS_EXPORT(exports, "pointLoss", PointLoss);
}

}  // namespace ns
