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

// One JS object per at::Tensor; the finaliser (GC) frees it when dispose() was never called.
class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static constexpr uint32_t kMagic = 0x7e450a11;
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, at::Tensor t);
  // nullptr when v is not a tensor handle made by this addon.
  static TensorWrap* FromValue(Napi::Value v);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

  // Throws "tensor already disposed" once disposed.
  const at::Tensor& tensor(Napi::Env env) const;
  bool disposed() const { return !t_.defined() && set_; }

 private:
  void Set(Napi::Env env, at::Tensor t);
  void Release(napi_env env);

  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
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

  uint32_t magic_ = kMagic;
  bool set_ = false;
  at::Tensor t_;
  int64_t bytes_ = 0;
  bool reported_ = false;  // bytes_ was reported to V8 as external memory
};

// Memory accounting (memory.cc): live tensor handles and their bytes. TrackAlloc returns whether
// the bytes were also reported to V8 (only outside tidy scopes; see src/tensor/engine.ts).
bool TrackAlloc(napi_env env, int64_t bytes);
void TrackFree(napi_env env, int64_t bytes, bool reported);
void ReportExternalBytes(napi_env env, int64_t bytes);

// DType codes shared with src/native/binding.ts.
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
