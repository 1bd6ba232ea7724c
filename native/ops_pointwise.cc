// Elementwise ops: binary arithmetic/comparison (tensor or number on either side), unary maths,
// clamp/where, dtype casts and the in-place ops used by optimizers and initialisers.
#include "common.h"

#include <ATen/ATen.h>
#include <ATen/ScalarOps.h>

#include <cmath>

namespace ns {

// A JS number becomes a "wrapped number" tensor, so type promotion matches PyTorch's Python scalars
// (float32 tensor + 2.5 stays float32; an integral number is an int64 scalar).
static at::Tensor ScalarOrTensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg) {
  if (i < info.Length() && info[i].IsNumber()) {
    double d = info[i].As<Napi::Number>().DoubleValue();
    at::Tensor s = (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
                       ? at::scalar_to_tensor(at::Scalar(static_cast<int64_t>(d)))
                       : at::scalar_to_tensor(at::Scalar(d));
    s.unsafeGetTensorImpl()->set_wrapped_number(true);
    return s;
  }
  if (i < info.Length() && info[i].IsBoolean()) {
    at::Tensor s = at::scalar_to_tensor(at::Scalar(info[i].As<Napi::Boolean>().Value()));
    s.unsafeGetTensorImpl()->set_wrapped_number(true);
    return s;
  }
  return ArgTensor(info, i, op, arg);
}

static const char* kBinaryNames[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "gt",
                                     "ge", "lt", "le", "logicalAnd", "logicalOr", "logicalXor", "remainder",
                                     "floorDivide", "atan2"};
static constexpr int kNumBinary = sizeof(kBinaryNames) / sizeof(kBinaryNames[0]);

// binary(op, a, b): a and b are tensors or numbers.
NS_FN(Binary) {
  Napi::Env env = info.Env();
  int64_t op = ArgInt(info, 0, "binary", "op");
  if (op < 0 || op >= kNumBinary) ThrowError(env, "binary: unknown op code " + std::to_string(op));
  const char* name = kBinaryNames[op];
  at::Tensor a = ScalarOrTensor(info, 1, name, "a");
  at::Tensor b = ScalarOrTensor(info, 2, name, "b");
  NS_TRY
  switch (op) {
    case 0: return Out(env, at::add(a, b));
    case 1: return Out(env, at::sub(a, b));
    case 2: return Out(env, at::mul(a, b));
    case 3: return Out(env, at::div(a, b));
    case 4: return Out(env, at::pow(a, b));
    case 5: return Out(env, at::maximum(a, b));
    case 6: return Out(env, at::minimum(a, b));
    case 7: return Out(env, at::eq(a, b));
    case 8: return Out(env, at::ne(a, b));
    case 9: return Out(env, at::gt(a, b));
    case 10: return Out(env, at::ge(a, b));
    case 11: return Out(env, at::lt(a, b));
    case 12: return Out(env, at::le(a, b));
    case 13: return Out(env, at::logical_and(a, b));
    case 14: return Out(env, at::logical_or(a, b));
    case 15: return Out(env, at::logical_xor(a, b));
    case 16: return Out(env, at::remainder(a, b));
    case 17: return Out(env, at::div(a, b, "floor"));
    case 18: return Out(env, at::atan2(a, b));
  }
  return env.Undefined();
  NS_CATCH(env)
}

static const char* kUnaryNames[] = {"neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
                                    "relu", "gelu", "floor", "round", "sign", "logicalNot", "ceil", "log1p",
                                    "expm1", "reciprocal", "square", "contiguous", "clone", "detach", "isnan",
                                    "softplus", "silu", "trunc", "erf", "isfinite", "log2", "tan"};
static constexpr int kNumUnary = sizeof(kUnaryNames) / sizeof(kUnaryNames[0]);

NS_FN(Unary) {
  Napi::Env env = info.Env();
  int64_t op = ArgInt(info, 0, "unary", "op");
  if (op < 0 || op >= kNumUnary) ThrowError(env, "unary: unknown op code " + std::to_string(op));
  const at::Tensor& a = ArgTensor(info, 1, kUnaryNames[op], "x");
  NS_TRY
  switch (op) {
    case 0: return Out(env, at::neg(a));
    case 1: return Out(env, at::abs(a));
    case 2: return Out(env, at::exp(a));
    case 3: return Out(env, at::log(a));
    case 4: return Out(env, at::sqrt(a));
    case 5: return Out(env, at::rsqrt(a));
    case 6: return Out(env, at::sin(a));
    case 7: return Out(env, at::cos(a));
    case 8: return Out(env, at::tanh(a));
    case 9: return Out(env, at::sigmoid(a));
    case 10: return Out(env, at::relu(a));
    case 11: return Out(env, at::gelu(a));
    case 12: return Out(env, at::floor(a));
    case 13: return Out(env, at::round(a));
    case 14: return Out(env, at::sign(a));
    case 15: return Out(env, at::logical_not(a));
    case 16: return Out(env, at::ceil(a));
    case 17: return Out(env, at::log1p(a));
    case 18: return Out(env, at::expm1(a));
    case 19: return Out(env, at::reciprocal(a));
    case 20: return Out(env, at::square(a));
    case 21: return Out(env, a.contiguous());
    case 22: return Out(env, a.clone());
    case 23: return Out(env, a.detach());
    case 24: return Out(env, at::isnan(a));
    case 25: return Out(env, at::softplus(a, 1, 20));
    case 26: return Out(env, at::silu(a));
    case 27: return Out(env, at::trunc(a));
    case 28: return Out(env, at::erf(a));
    case 29: return Out(env, at::isfinite(a));
    case 30: return Out(env, at::log2(a));
    case 31: return Out(env, at::tan(a));
  }
  return env.Undefined();
  NS_CATCH(env)
}

NS_FN(LeakyRelu) {
  Napi::Env env = info.Env();
  const at::Tensor& a = ArgTensor(info, 0, "leakyRelu", "x");
  double slope = ArgNumber(info, 1, "leakyRelu", "negativeSlope");
  NS_TRY return Out(env, at::leaky_relu(a, slope)); NS_CATCH(env)
}

NS_FN(Clamp) {
  Napi::Env env = info.Env();
  const at::Tensor& a = ArgTensor(info, 0, "clamp", "x");
  auto lo = ArgOptNumber(info, 1, "clamp", "min");
  auto hi = ArgOptNumber(info, 2, "clamp", "max");
  if (!lo && !hi) ThrowError(env, "clamp: at least one of min and max is required");
  NS_TRY
  c10::optional<at::Scalar> l, h;
  if (lo) l = at::Scalar(*lo);
  if (hi) h = at::Scalar(*hi);
  return Out(env, at::clamp(a, l, h));
  NS_CATCH(env)
}

NS_FN(Where) {
  Napi::Env env = info.Env();
  const at::Tensor& c = ArgTensor(info, 0, "where", "condition");
  at::Tensor a = ScalarOrTensor(info, 1, "where", "a");
  at::Tensor b = ScalarOrTensor(info, 2, "where", "b");
  NS_TRY
  if (c.scalar_type() != at::kBool) ThrowError(env, "where: condition must be a bool tensor, got another dtype");
  return Out(env, at::where(c, a, b));
  NS_CATCH(env)
}

NS_FN(To) {
  Napi::Env env = info.Env();
  const at::Tensor& a = ArgTensor(info, 0, "to", "x");
  auto st = ArgDType(info, 1, "to");
  NS_TRY return Out(env, a.to(st)); NS_CATCH(env)
}

NS_FN(Lerp) {
  Napi::Env env = info.Env();
  const at::Tensor& a = ArgTensor(info, 0, "lerp", "a");
  const at::Tensor& b = ArgTensor(info, 1, "lerp", "b");
  double w = ArgNumber(info, 2, "lerp", "weight");
  NS_TRY return Out(env, at::lerp(a, b, w)); NS_CATCH(env)
}

// ---- in place (return nothing; the JS side returns `this`) ----

NS_FN(Copy_) {
  Napi::Env env = info.Env();
  at::Tensor d = ArgTensor(info, 0, "copy_", "self");
  const at::Tensor& s = ArgTensor(info, 1, "copy_", "src");
  NS_TRY d.copy_(s); return env.Undefined(); NS_CATCH(env)
}

NS_FN(Fill_) {
  Napi::Env env = info.Env();
  at::Tensor d = ArgTensor(info, 0, "fill_", "self");
  double v = ArgNumber(info, 1, "fill_", "value");
  NS_TRY d.fill_(v); return env.Undefined(); NS_CATCH(env)
}

NS_FN(Zero_) {
  Napi::Env env = info.Env();
  at::Tensor d = ArgTensor(info, 0, "zero_", "self");
  NS_TRY d.zero_(); return env.Undefined(); NS_CATCH(env)
}

NS_FN(Uniform_) {
  Napi::Env env = info.Env();
  at::Tensor d = ArgTensor(info, 0, "uniform_", "self");
  double a = ArgNumber(info, 1, "uniform_", "from");
  double b = ArgNumber(info, 2, "uniform_", "to");
  NS_TRY d.uniform_(a, b); return env.Undefined(); NS_CATCH(env)
}

NS_FN(Normal_) {
  Napi::Env env = info.Env();
  at::Tensor d = ArgTensor(info, 0, "normal_", "self");
  double m = ArgNumber(info, 1, "normal_", "mean");
  double s = ArgNumber(info, 2, "normal_", "std");
  NS_TRY d.normal_(m, s); return env.Undefined(); NS_CATCH(env)
}

NS_FN(MulScalar_) {
  Napi::Env env = info.Env();
  at::Tensor d = ArgTensor(info, 0, "mulScalar_", "self");
  double s = ArgNumber(info, 1, "mulScalar_", "value");
  NS_TRY d.mul_(s); return env.Undefined(); NS_CATCH(env)
}

NS_FN(AddScaled_) {
  Napi::Env env = info.Env();
  at::Tensor d = ArgTensor(info, 0, "addScaled_", "self");
  const at::Tensor& o = ArgTensor(info, 1, "addScaled_", "other");
  double alpha = ArgNumber(info, 2, "addScaled_", "alpha");
  NS_TRY d.add_(o, alpha); return env.Undefined(); NS_CATCH(env)
}

NS_FN(Clamp_) {
  Napi::Env env = info.Env();
  at::Tensor d = ArgTensor(info, 0, "clamp_", "self");
  auto lo = ArgOptNumber(info, 1, "clamp_", "min");
  auto hi = ArgOptNumber(info, 2, "clamp_", "max");
  NS_TRY
  c10::optional<at::Scalar> l, h;
  if (lo) l = at::Scalar(*lo);
  if (hi) h = at::Scalar(*hi);
  d.clamp_(l, h);
  return env.Undefined();
  NS_CATCH(env)
}

void InitPointwise(Napi::Env env, Napi::Object exports) {
  NS_EXPORT(exports, "binary", Binary);
  NS_EXPORT(exports, "unary", Unary);
  NS_EXPORT(exports, "leakyRelu", LeakyRelu);
  NS_EXPORT(exports, "clamp", Clamp);
  NS_EXPORT(exports, "where", Where);
  NS_EXPORT(exports, "to", To);
  NS_EXPORT(exports, "lerp", Lerp);
  NS_EXPORT(exports, "copy_", Copy_);
  NS_EXPORT(exports, "fill_", Fill_);
  NS_EXPORT(exports, "zero_", Zero_);
  NS_EXPORT(exports, "uniform_", Uniform_);
  NS_EXPORT(exports, "normal_", Normal_);
  NS_EXPORT(exports, "mulScalar_", MulScalar_);
  NS_EXPORT(exports, "addScaled_", AddScaled_);
  NS_EXPORT(exports, "clamp_", Clamp_);
}

}  // namespace ns
