// Memory accounting, threads, seeding and the grad-mode switch.
#include "common.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <atomic>

namespace ns {

static std::atomic<int64_t> g_numTensors{0};
static std::atomic<int64_t> g_numBytes{0};

void TrackAlloc(napi_env env, int64_t bytes) {
  g_numTensors++;
  g_numBytes += bytes;
  // Tells V8 that this small JS object holds native memory, so GC runs before RSS grows unbounded.
  int64_t ignored;
  if (bytes) napi_adjust_external_memory(env, bytes, &ignored);
}

void TrackFree(napi_env env, int64_t bytes) {
  g_numTensors--;
  g_numBytes -= bytes;
  int64_t ignored;
  if (bytes) napi_adjust_external_memory(env, -bytes, &ignored);
}

NS_FN(Memory) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("numTensors", Napi::Number::New(env, static_cast<double>(g_numTensors.load())));
  o.Set("numBytes", Napi::Number::New(env, static_cast<double>(g_numBytes.load())));
  return o;
}

NS_FN(SetNumThreads) {
  Napi::Env env = info.Env();
  int64_t n = ArgInt(info, 0, "setNumThreads", "n");
  if (n < 1) ThrowError(env, "setNumThreads: n must be >= 1, got " + std::to_string(n));
  NS_TRY at::set_num_threads(static_cast<int>(n)); return env.Undefined(); NS_CATCH(env)
}

NS_FN(GetNumThreads) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

NS_FN(ManualSeed) {
  Napi::Env env = info.Env();
  double s = ArgNumber(info, 0, "manualSeed", "seed");
  if (s < 0 || s != static_cast<double>(static_cast<uint64_t>(s))) ThrowError(env, "manualSeed: seed must be a non-negative integer");
  NS_TRY at::manual_seed(static_cast<uint64_t>(s)); return env.Undefined(); NS_CATCH(env)
}

NS_FN(SetGradEnabled) {
  Napi::Env env = info.Env();
  bool b = ArgBool(info, 0, "setGradEnabled", "enabled");
  at::GradMode::set_enabled(b);
  return env.Undefined();
}

NS_FN(IsGradEnabled) { return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled()); }

NS_FN(TorchVersion) {
  Napi::Env env = info.Env();
#ifdef TORCH_VERSION
  return Napi::String::New(env, TORCH_VERSION);
#else
  return Napi::String::New(env, "unknown");
#endif
}

void InitMemory(Napi::Env env, Napi::Object exports) {
  NS_EXPORT(exports, "memory", Memory);
  NS_EXPORT(exports, "setNumThreads", SetNumThreads);
  NS_EXPORT(exports, "getNumThreads", GetNumThreads);
  NS_EXPORT(exports, "manualSeed", ManualSeed);
  NS_EXPORT(exports, "setGradEnabled", SetGradEnabled);
  NS_EXPORT(exports, "isGradEnabled", IsGradEnabled);
  NS_EXPORT(exports, "torchVersion", TorchVersion);
}

}  // namespace ns
