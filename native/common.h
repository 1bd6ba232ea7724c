// Shared helpers for the noduleseg addon: the tensor wrapper, argument readers that name the op
// and the argument in their errors, and the libtorch-error-to-JS-error translation.
#pragma once

#include <napi.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ns {

// N-API type tags: how the addon recognises its own objects. A tag is checked before any native
// pointer is read, so a plain object, an object with forged fields or another class's handle is
// refused with a TypeError instead of being read through a wrong pointer.
inline constexpr napi_type_tag kTensorTypeTag = {0x3c1f7a92d4e85b06ULL, 0x9e2d41c7a8f3b510ULL};
inline constexpr napi_type_tag kOptimizerTypeTag = {0x7b04e9c25a1d3f88ULL, 0x14c6a0f93e7d2b59ULL};

// One JS object per at::Tensor; the finaliser (GC) frees it when dispose() was never called.
class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, at::Tensor t);
  // nullptr when v is not a live tensor handle made by this addon; *disposed (when given) tells a
  // disposed handle of this addon from a foreign value.
  static TensorWrap* FromValue(Napi::Value v, bool* disposed = nullptr);
  // The tensor behind `this` of a NativeTensor method; throws a TypeError for a foreign `this`.
  static TensorWrap* Self(const Napi::CallbackInfo& info);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

  // Throws "tensor already disposed" once disposed.
  const at::Tensor& tensor(Napi::Env env) const;

 private:
  void Set(Napi::Env env, at::Tensor t);
  void Release(napi_env env);

  // dispose() and isDisposed() also answer for a handle whose wrapper is already freed.
  static Napi::Value DisposeThis(const Napi::CallbackInfo& info);
  static Napi::Value IsDisposedThis(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value DType(const Napi::CallbackInfo& info);
  Napi::Value RequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value Grad(const Napi::CallbackInfo& info);
  Napi::Value SetGrad(const Napi::CallbackInfo& info);
  Napi::Value IsLeaf(const Napi::CallbackInfo& info);
  Napi::Value Item(const Napi::CallbackInfo& info);
  Napi::Value ToBuffer(const Napi::CallbackInfo& info);
  Napi::Value NBytes(const Napi::CallbackInfo& info);
  Napi::Value ReportExternal(const Napi::CallbackInfo& info);

  bool set_ = false;
  at::Tensor t_;
  int64_t bytes_ = 0;
  bool reported_ = false;  // bytes_ was reported to V8 as external memory
};

// Describes a value that is not what an argument needed ("an optimizer", "a plain object", ...).
std::string Described(Napi::Value v);

// Prototype methods defined through these reach their object via T::Self(info), which checks the
// type tag of `this` before unwrapping it. (V8 also refuses a receiver the class did not make,
// "Illegal invocation"; the tag check does not rely on that, and names a disposed handle.)
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
napi_value CallbackOf(napi_env env, napi_callback_info cbi) {
  try {
    Napi::CallbackInfo info(env, cbi);
    return F(info);
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
  }
  return nullptr;
}

template <typename T, Napi::Value (T::*M)(const Napi::CallbackInfo&)>
Napi::Value CallOnSelf(const Napi::CallbackInfo& info) {
  return (T::Self(info)->*M)(info);
}

template <typename T, Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::ClassPropertyDescriptor<T> PrototypeFunction(const char* name) {
  napi_property_descriptor d{};
  d.utf8name = name;
  d.method = &CallbackOf<F>;
  d.attributes = napi_default;
  return Napi::ClassPropertyDescriptor<T>(d);
}

template <typename T, Napi::Value (T::*M)(const Napi::CallbackInfo&)>
Napi::ClassPropertyDescriptor<T> CheckedMethod(const char* name) {
  return PrototypeFunction<T, &CallOnSelf<T, M>>(name);
}

// Memory accounting (memory.cc): live tensor handles and their bytes. TrackAlloc returns whether
// the bytes were also reported to V8 (only outside tidy scopes; see src/tensor/engine.ts).
bool TrackAlloc(napi_env env, int64_t bytes);
void TrackFree(napi_env env, int64_t bytes, bool reported);
void ReportExternalBytes(napi_env env, int64_t bytes);
// Optimizers: live count, state bytes (moments, momentum buffers: counted in numBytes and reported
// to V8) and the bytes of the parameters they reference (shared with the parameters' handles, so
// kept apart from numBytes). Deltas, applied when an optimizer is made, steps, loads or is freed.
void TrackOptimizer(napi_env env, int countDelta, int64_t stateBytesDelta, int64_t paramBytesDelta);

// DType codes: the dtype family of native/ops.def.
at::ScalarType DTypeFromCode(int code);
int CodeFromDType(at::ScalarType st);

// Argument readers. `op` and `arg` name the call in error messages.
const at::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg);
c10::optional<at::Tensor> ArgOptTensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg);
std::vector<at::Tensor> ArgTensors(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg);
double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg);
c10::optional<double> ArgOptNumber(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg);
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg);
std::vector<int64_t> ArgInts(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* op, const char* arg);
at::ScalarType ArgDType(const Napi::CallbackInfo& info, size_t i, const char* op);
bool IsNullish(const Napi::Value& v);
// The tensor of handle v; `where` names it in the TypeError (foreign value) or Error (disposed).
const at::Tensor& TensorOrThrow(Napi::Env env, Napi::Value v, const std::string& where);

std::string ShapeString(at::IntArrayRef s);
[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);
[[noreturn]] void ThrowError(Napi::Env env, const std::string& msg);

inline Napi::Value Out(Napi::Env env, at::Tensor t) { return TensorWrap::Wrap(env, std::move(t)); }

}  // namespace ns

// Every entry point runs its body inside NS_TRY/NS_CATCH so a c10::Error or std::exception becomes
// a JS Error carrying libtorch's message instead of terminating the process.
#define NS_TRY try {
#define NS_CATCH(env)                                                  \
  }                                                                    \
  catch (const Napi::Error&) {                                         \
    throw;                                                             \
  }                                                                    \
  catch (const c10::Error& e) {                                        \
    throw Napi::Error::New(env, e.what_without_backtrace());           \
  }                                                                    \
  catch (const std::exception& e) {                                    \
    throw Napi::Error::New(env, e.what());                             \
  }

#define NS_FN(name) static Napi::Value name(const Napi::CallbackInfo& info)
#define NS_EXPORT(exports, name, fn) exports.Set(name, Napi::Function::New(env, fn, name))
