// Addon entry point: each translation unit registers its own functions.
#include "common.h"
#include "op_table.h"

namespace ns {
void InitTensor(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitPointwise(Napi::Env env, Napi::Object exports);
void InitReduce(Napi::Env env, Napi::Object exports);
void InitShape(Napi::Env env, Napi::Object exports);
void InitNN(Napi::Env env, Napi::Object exports);
void InitAutograd(Napi::Env env, Napi::Object exports);
void InitOptim(Napi::Env env, Napi::Object exports);
}  // namespace ns

template <size_t N>
static Napi::Array Names(Napi::Env env, const char* const (&names)[N]) {
  Napi::Array a = Napi::Array::New(env, N);
  for (size_t i = 0; i < N; i++) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, names[i]));
  return a;
}

// opTable(): every family of native/ops.def, names in code order. src/native/binding.ts compares it
// with the generated op-codes.ts when it loads the addon.
static Napi::Value OpTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("binary", Names(env, ns::kBinaryNames));
  o.Set("unary", Names(env, ns::kUnaryNames));
  o.Set("reduce", Names(env, ns::kReduceNames));
  o.Set("pointLoss", Names(env, ns::kPointLossNames));
  o.Set("interpMode", Names(env, ns::kInterpModeNames));
  o.Set("reduction", Names(env, ns::kReductionNames));
  o.Set("optimizerKind", Names(env, ns::kOptimizerKindNames));
  o.Set("dtype", Names(env, ns::kDTypeNames));
  return o;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("opTable", Napi::Function::New(env, OpTable, "opTable"));
  ns::InitTensor(env, exports);
  ns::InitMemory(env, exports);
  ns::InitPointwise(env, exports);
  ns::InitReduce(env, exports);
  ns::InitShape(env, exports);
  ns::InitNN(env, exports);
  ns::InitAutograd(env, exports);
#ifndef NS_NO_OPTIM
  ns::InitOptim(env, exports);
#endif
  return exports;
}

NODE_API_MODULE(noduleseg_native, Init)
