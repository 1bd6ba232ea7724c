// The tensor handle (one JS object per at::Tensor), argument readers and tensor creation.
#include "common.h"
#include "op_table.h"

#include <ATen/ATen.h>

#include <cstring>
#include <sstream>

namespace ns {

// Per-environment constructor, so the addon also works in worker threads (each has its own env).
struct AddonData {
  Napi::FunctionReference tensorCtor;
};

std::string ShapeString(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); i++) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

void ThrowType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
void ThrowError(Napi::Env env, const std::string& msg) { throw Napi::Error::New(env, msg); }

at::ScalarType DTypeFromCode(int code) {
  if (code < 0 || code >= Count(kDTypes)) throw std::invalid_argument("unknown dtype code " + std::to_string(code));
  return kDTypes[code];
}

int CodeFromDType(at::ScalarType st) {
  for (int c = 0; c < Count(kDTypes); c++) {
    if (kDTypes[c] == st) return c;
  }
  return -1;
}

std::string Described(Napi::Value v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return "a number";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  if (v.IsTypedArray()) return "a typed array";
  if (v.IsObject()) {
    Napi::Object o = v.As<Napi::Object>();
    if (o.CheckTypeTag(&kOptimizerTypeTag)) return "an optimizer handle";
    if (o.CheckTypeTag(&kTensorTypeTag)) return "a tensor handle";
    return "an object that is not a handle of this addon";
  }
  return "another kind of value";
}

// ---- TensorWrap -------------------------------------------------------------------------------

Napi::Function TensorWrap::Init(Napi::Env env) {
  using T = TensorWrap;
  Napi::Function fn = DefineClass(env, "NativeTensor",
      {
          PrototypeFunction<T, &T::DisposeThis>("dispose"),
          PrototypeFunction<T, &T::IsDisposedThis>("isDisposed"),
          CheckedMethod<T, &T::Shape>("shape"),
          CheckedMethod<T, &T::DType>("dtype"),
          CheckedMethod<T, &T::RequiresGrad>("requiresGrad"),
          CheckedMethod<T, &T::SetRequiresGrad>("setRequiresGrad"),
          CheckedMethod<T, &T::Grad>("grad"),
          CheckedMethod<T, &T::SetGrad>("setGrad"),
          CheckedMethod<T, &T::IsLeaf>("isLeaf"),
          CheckedMethod<T, &T::Item>("item"),
          CheckedMethod<T, &T::ToBuffer>("toBuffer"),
          CheckedMethod<T, &T::NBytes>("nbytes"),
          CheckedMethod<T, &T::ReportExternal>("reportExternal"),
      });
  auto* data = new AddonData();
  data->tensorCtor = Napi::Persistent(fn);
  env.SetInstanceData<AddonData>(data);
  return fn;
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  info.This().As<Napi::Object>().TypeTag(&kTensorTypeTag);
}

TensorWrap::~TensorWrap() { Release(Env()); }

void TensorWrap::Set(Napi::Env env, at::Tensor t) {
  t_ = std::move(t);
  set_ = true;
  bytes_ = static_cast<int64_t>(t_.numel()) * static_cast<int64_t>(t_.element_size());
  reported_ = TrackAlloc(env, bytes_);
}

void TensorWrap::Release(napi_env env) {
  if (t_.defined()) {
    t_ = at::Tensor();
    TrackFree(env, bytes_, reported_);
    bytes_ = 0;
    reported_ = false;
  }
}

Napi::Object TensorWrap::Wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) ThrowError(env, "internal: an op returned an undefined tensor");
  Napi::Object obj = env.GetInstanceData<AddonData>()->tensorCtor.New({});
  TensorWrap* w = Napi::ObjectWrap<TensorWrap>::Unwrap(obj);
  w->Set(env, std::move(t));
  return obj;
}

TensorWrap* TensorWrap::FromValue(Napi::Value v, bool* disposed) {
  if (disposed) *disposed = false;
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kTensorTypeTag)) return nullptr;
  void* p = nullptr;
  if (napi_unwrap(v.Env(), v, &p) != napi_ok || p == nullptr) {
    // A tagged handle without a wrapper: dispose() removed it. Clear any exception the failed
    // unwrap left pending.
    bool pending = false;
    napi_is_exception_pending(v.Env(), &pending);
    if (pending) {
      napi_value ex;
      napi_get_and_clear_last_exception(v.Env(), &ex);
    }
    if (disposed) *disposed = true;
    return nullptr;
  }
  return static_cast<TensorWrap*>(p);
}

TensorWrap* TensorWrap::Self(const Napi::CallbackInfo& info) {
  bool disposed = false;
  TensorWrap* w = FromValue(info.This(), &disposed);
  if (disposed) ThrowError(info.Env(), "tensor already disposed");
  if (!w) ThrowType(info.Env(), "NativeTensor method called on " + Described(info.This()) + ", not a tensor handle");
  return w;
}

const at::Tensor& TensorWrap::tensor(Napi::Env env) const {
  if (!t_.defined()) ThrowError(env, set_ ? "tensor already disposed" : "empty tensor handle (made by new NativeTensor(), not by an op)");
  return t_;
}

Napi::Value TensorWrap::DisposeThis(const Napi::CallbackInfo& info) {
  bool disposed = false;
  TensorWrap* w = FromValue(info.This(), &disposed);
  if (disposed) return info.Env().Undefined();  // idempotent
  if (!w) ThrowType(info.Env(), "NativeTensor.dispose called on " + Described(info.This()) + ", not a tensor handle");
  return w->Dispose(info);
}

Napi::Value TensorWrap::IsDisposedThis(const Napi::CallbackInfo& info) {
  bool disposed = false;
  TensorWrap* w = FromValue(info.This(), &disposed);
  if (!w && !disposed) ThrowType(info.Env(), "NativeTensor.isDisposed called on " + Described(info.This()) + ", not a tensor handle");
  return Napi::Boolean::New(info.Env(), disposed || !w->t_.defined());
}

// Frees the tensor and this wrapper now. Without napi_remove_wrap the wrapper would wait for a GC
// finaliser, and Node runs those from the event loop: a long synchronous training loop would pile
// them up (RSS grew ~13 MB per 1,000 steps). The JS object is left without a native pointer;
// src/tensor refuses to use it ("tensor already disposed").
Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Release(env);
  void* self = nullptr;
  if (napi_remove_wrap(env, info.This(), &self) == napi_ok && self == this) {
    delete this;  // ~ObjectWrap deletes the (weak) reference made by napi_wrap
  }
  return env.Undefined();
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = tensor(env);
  auto sizes = t.sizes();
  Napi::Array a = Napi::Array::New(env, sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(sizes[i])));
  return a;
}

Napi::Value TensorWrap::DType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Number::New(env, CodeFromDType(tensor(env).scalar_type()));
}

Napi::Value TensorWrap::RequiresGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, tensor(env).requires_grad());
}

Napi::Value TensorWrap::SetRequiresGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool b = ArgBool(info, 0, "requiresGrad_", "requiresGrad");
  NS_TRY
  // set_requires_grad is non-const on TensorBase but mutates the shared TensorImpl.
  const_cast<at::Tensor&>(tensor(env)).set_requires_grad(b);
  return env.Undefined();
  NS_CATCH(env)
}

Napi::Value TensorWrap::Grad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NS_TRY
  const at::Tensor& g = tensor(env).grad();
  if (!g.defined()) return env.Null();
  return Out(env, g);
  NS_CATCH(env)
}

Napi::Value TensorWrap::SetGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = ArgOptTensor(info, 0, "setGrad", "grad");
  NS_TRY
  const_cast<at::Tensor&>(tensor(env)).mutable_grad() = g ? *g : at::Tensor();
  return env.Undefined();
  NS_CATCH(env)
}

Napi::Value TensorWrap::IsLeaf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, tensor(env).is_leaf());
}

Napi::Value TensorWrap::Item(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NS_TRY
  const at::Tensor& t = tensor(env);
  if (t.numel() != 1) ThrowError(env, "item: tensor must have exactly one element, got shape " + ShapeString(t.sizes()));
  return Napi::Number::New(env, t.item().toDouble());
  NS_CATCH(env)
}

Napi::Value TensorWrap::ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NS_TRY
  at::Tensor c = tensor(env).detach().contiguous();
  size_t n = static_cast<size_t>(c.numel()) * c.element_size();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, n);
  if (n) std::memcpy(buf.Data(), c.data_ptr(), n);
  return buf;
  NS_CATCH(env)
}

Napi::Value TensorWrap::NBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(bytes_));
}

// Called for a tensor that leaves every tidy scope: from now on only the GC may free it.
Napi::Value TensorWrap::ReportExternal(const Napi::CallbackInfo& info) {
  if (t_.defined() && !reported_) {
    ReportExternalBytes(info.Env(), bytes_);
    reported_ = true;
  }
  return info.Env().Undefined();
}

// ---- argument readers ---------------------------------------------------------------------------

static std::string Where(const char* op, const char* arg) { return std::string(op) + ": " + arg; }

bool IsNullish(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

// A tensor argument: a foreign value is a TypeError naming what it was; a disposed handle an Error.
const at::Tensor& TensorOrThrow(Napi::Env env, Napi::Value v, const std::string& where) {
  bool disposed = false;
  TensorWrap* w = TensorWrap::FromValue(v, &disposed);
  if (disposed) ThrowError(env, where + ": tensor already disposed");
  if (!w) ThrowType(env, where + " must be a Tensor, got " + Described(v));
  return w->tensor(env);
}

const at::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg) {
  return TensorOrThrow(info.Env(), i < info.Length() ? info[i] : info.Env().Undefined(), Where(op, arg));
}

c10::optional<at::Tensor> ArgOptTensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg) {
  if (i >= info.Length() || IsNullish(info[i])) return c10::nullopt;
  return ArgTensor(info, i, op, arg);
}

std::vector<at::Tensor> ArgTensors(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg) {
  if (i >= info.Length() || !info[i].IsArray()) ThrowType(info.Env(), Where(op, arg) + " must be an array of Tensors");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) out.push_back(TensorOrThrow(info.Env(), a.Get(k), Where(op, arg) + "[" + std::to_string(k) + "]"));
  return out;
}

double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg) {
  if (i >= info.Length() || !info[i].IsNumber()) ThrowType(info.Env(), Where(op, arg) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

c10::optional<double> ArgOptNumber(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg) {
  if (i >= info.Length() || IsNullish(info[i])) return c10::nullopt;
  return ArgNumber(info, i, op, arg);
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg) {
  double d = ArgNumber(info, i, op, arg);
  if (d != static_cast<double>(static_cast<int64_t>(d))) ThrowType(info.Env(), Where(op, arg) + " must be an integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg) {
  if (i >= info.Length() || !info[i].IsBoolean()) ThrowType(info.Env(), Where(op, arg) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::vector<int64_t> ArgInts(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg) {
  if (i >= info.Length() || !info[i].IsArray()) ThrowType(info.Env(), Where(op, arg) + " must be an array of integers");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!v.IsNumber()) ThrowType(info.Env(), Where(op, arg) + " must be an array of integers");
    double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) ThrowType(info.Env(), Where(op, arg) + " must be an array of integers");
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg) {
  if (i >= info.Length() || !info[i].IsString()) ThrowType(info.Env(), Where(op, arg) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

at::ScalarType ArgDType(const Napi::CallbackInfo& info, size_t i, const char* op) {
  int64_t c = ArgInt(info, i, op, "dtype");
  if (c < 0 || c >= Count(kDTypes)) ThrowType(info.Env(), Where(op, "dtype") + " is not a known dtype code");
  return DTypeFromCode(static_cast<int>(c));
}

// ---- creation -----------------------------------------------------------------------------------

static at::TensorOptions Opts(at::ScalarType st) { return at::TensorOptions().dtype(st); }

// fromBuffer(typedArray, dtype, shape): copies the bytes into a new tensor.
NS_FN(FromBuffer) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) ThrowType(env, "tensor: data must be a typed array");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  at::ScalarType st = ArgDType(info, 1, "tensor");
  std::vector<int64_t> shape = ArgInts(info, 2, "tensor", "shape");
  NS_TRY
  int64_t numel = 1;
  for (int64_t s : shape) {
    if (s < 0) ThrowError(env, "tensor: shape " + ShapeString(shape) + " has a negative size");
    numel *= s;
  }
  at::Tensor t = at::empty(shape, Opts(st));
  size_t need = static_cast<size_t>(numel) * t.element_size();
  if (ta.ByteLength() != need) {
    ThrowError(env, "tensor: data has " + std::to_string(ta.ElementLength()) + " elements but shape " +
                        ShapeString(shape) + " needs " + std::to_string(numel));
  }
  if (need) {
    const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    std::memcpy(t.data_ptr(), src, need);
  }
  return Out(env, t);
  NS_CATCH(env)
}

NS_FN(Zeros) {
  Napi::Env env = info.Env();
  auto shape = ArgInts(info, 0, "zeros", "shape");
  auto st = ArgDType(info, 1, "zeros");
  NS_TRY return Out(env, at::zeros(shape, Opts(st))); NS_CATCH(env)
}

NS_FN(Ones) {
  Napi::Env env = info.Env();
  auto shape = ArgInts(info, 0, "ones", "shape");
  auto st = ArgDType(info, 1, "ones");
  NS_TRY return Out(env, at::ones(shape, Opts(st))); NS_CATCH(env)
}

NS_FN(Empty) {
  Napi::Env env = info.Env();
  auto shape = ArgInts(info, 0, "empty", "shape");
  auto st = ArgDType(info, 1, "empty");
  NS_TRY return Out(env, at::empty(shape, Opts(st))); NS_CATCH(env)
}

NS_FN(Full) {
  Napi::Env env = info.Env();
  auto shape = ArgInts(info, 0, "full", "shape");
  double v = ArgNumber(info, 1, "full", "value");
  auto st = ArgDType(info, 2, "full");
  NS_TRY return Out(env, at::full(shape, v, Opts(st))); NS_CATCH(env)
}

NS_FN(Arange) {
  Napi::Env env = info.Env();
  double a = ArgNumber(info, 0, "arange", "start");
  double b = ArgNumber(info, 1, "arange", "end");
  double s = ArgNumber(info, 2, "arange", "step");
  auto st = ArgDType(info, 3, "arange");
  if (s == 0) ThrowError(env, "arange: step must be non-zero");
  NS_TRY return Out(env, at::arange(a, b, s, Opts(st))); NS_CATCH(env)
}

NS_FN(Linspace) {
  Napi::Env env = info.Env();
  double a = ArgNumber(info, 0, "linspace", "start");
  double b = ArgNumber(info, 1, "linspace", "end");
  int64_t n = ArgInt(info, 2, "linspace", "steps");
  auto st = ArgDType(info, 3, "linspace");
  if (n < 0) ThrowError(env, "linspace: steps must be >= 0, got " + std::to_string(n));
  NS_TRY return Out(env, at::linspace(a, b, n, Opts(st))); NS_CATCH(env)
}

NS_FN(Eye) {
  Napi::Env env = info.Env();
  int64_t n = ArgInt(info, 0, "eye", "n");
  int64_t m = ArgInt(info, 1, "eye", "m");
  auto st = ArgDType(info, 2, "eye");
  NS_TRY return Out(env, at::eye(n, m, Opts(st))); NS_CATCH(env)
}

NS_FN(Rand) {
  Napi::Env env = info.Env();
  auto shape = ArgInts(info, 0, "rand", "shape");
  auto st = ArgDType(info, 1, "rand");
  NS_TRY return Out(env, at::rand(shape, Opts(st))); NS_CATCH(env)
}

NS_FN(Randn) {
  Napi::Env env = info.Env();
  auto shape = ArgInts(info, 0, "randn", "shape");
  auto st = ArgDType(info, 1, "randn");
  NS_TRY return Out(env, at::randn(shape, Opts(st))); NS_CATCH(env)
}

NS_FN(Randint) {
  Napi::Env env = info.Env();
  int64_t lo = ArgInt(info, 0, "randint", "low");
  int64_t hi = ArgInt(info, 1, "randint", "high");
  auto shape = ArgInts(info, 2, "randint", "shape");
  auto st = ArgDType(info, 3, "randint");
  if (hi <= lo) ThrowError(env, "randint: high must be > low, got low=" + std::to_string(lo) + " high=" + std::to_string(hi));
  NS_TRY return Out(env, at::randint(lo, hi, shape, Opts(st))); NS_CATCH(env)
}

NS_FN(Randperm) {
  Napi::Env env = info.Env();
  int64_t n = ArgInt(info, 0, "randperm", "n");
  NS_TRY return Out(env, at::randperm(n, Opts(at::kLong))); NS_CATCH(env)
}

void InitTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeTensor", TensorWrap::Init(env));
  NS_EXPORT(exports, "fromBuffer", FromBuffer);
  NS_EXPORT(exports, "zeros", Zeros);
  NS_EXPORT(exports, "ones", Ones);
  NS_EXPORT(exports, "empty", Empty);
  NS_EXPORT(exports, "full", Full);
  NS_EXPORT(exports, "arange", Arange);
  NS_EXPORT(exports, "linspace", Linspace);
  NS_EXPORT(exports, "eye", Eye);
  NS_EXPORT(exports, "rand", Rand);
  NS_EXPORT(exports, "randn", Randn);
  NS_EXPORT(exports, "randint", Randint);
  NS_EXPORT(exports, "randperm", Randperm);
}

}  // namespace ns
