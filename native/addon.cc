// Addon entry point: each translation unit registers its own functions.
#include "common.h"

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

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
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
