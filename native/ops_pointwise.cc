// Elementwise ops: binary arithmetic/comparison (tensor or number on either side), unary maths,
// clamp/where, dtype casts and the in-place ops used by optimizers and initialisers.
#include "common.h"
#include "op_table.h"

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

// binary(code, a, b): a and b are tensors or numbers; codes are BinaryOp (native/ops.def).
NS_FN(Binary) {
  Napi::Env env = info.Env();
  int64_t op = ArgInt(info, 0, "binary", "op");
  if (op < 0 || op >= static_cast<int64_t>(BinaryOp::kCount)) ThrowError(env, "binary: unknown op code " + std::to_string(op));
  const char* name = kBinaryNames[op];
  at::Tensor a = ScalarOrTensor(info, 1, name, "a");
  at::Tensor b = ScalarOrTensor(info, 2, name, "b");
  NS_TRY
  switch (static_cast<BinaryOp>(op)) {
#define NS_BINARY(name, expr) \
  case BinaryOp::name:        \
    return Out(env, expr);
#include "ops.def"
    case BinaryOp::kCount: break;
  }
  return env.Undefined();
  NS_CATCH(env)
}

// unary(code, x): codes are UnaryOp (native/ops.def).
NS_FN(Unary) {
  Napi::Env env = info.Env();
  int64_t op = ArgInt(info, 0, "unary", "op");
  if (op < 0 || op >= static_cast<int64_t>(UnaryOp::kCount)) ThrowError(env, "unary: unknown op code " + std::to_string(op));
  const at::Tensor& a = ArgTensor(info, 1, kUnaryNames[op], "x");
  NS_TRY
  switch (static_cast<UnaryOp>(op)) {
#define NS_UNARY(name, expr) \
  case UnaryOp::name:        \
    return Out(env, expr);
#include "ops.def"
    case UnaryOp::kCount: break;
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
