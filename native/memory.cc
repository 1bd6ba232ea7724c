// Memory accounting, threads, seeding and the grad-mode switch.
#include "common.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/version.h>

#include <atomic>

#include <dlfcn.h>

namespace ns {

static std::atomic<int64_t> g_numTensors{0};
static std::atomic<int64_t> g_numBytes{0};
static std::atomic<int64_t> g_numOptimizers{0};
static std::atomic<int64_t> g_optimizerStateBytes{0};
static std::atomic<int64_t> g_optimizerParamBytes{0};

// Tensors made inside a tidy scope are freed deterministically when it closes, so they are not
// reported to V8: reporting them made V8 start a GC cycle every few steps of a training loop, and
// its helper threads then competed with libtorch's OpenMP threads. Tensors made outside any scope
// (or leaving one) are reported, so the GC runs before leaked tensors pile up.
static thread_local bool g_report = true;  // per JS thread (main or worker)

bool TrackAlloc(napi_env env, int64_t bytes) {
  g_numTensors++;
  g_numBytes += bytes;
  if (!g_report || !bytes) return false;
  int64_t ignored;
  napi_adjust_external_memory(env, bytes, &ignored);
  return true;
}

void ReportExternalBytes(napi_env env, int64_t bytes) {
  int64_t ignored;
  if (bytes) napi_adjust_external_memory(env, bytes, &ignored);
}

void TrackFree(napi_env env, int64_t bytes, bool reported) {
  g_numTensors--;
  g_numBytes -= bytes;
  int64_t ignored;
  if (reported && bytes) napi_adjust_external_memory(env, -bytes, &ignored);
}

// Optimizer state lives as long as its optimizer, not a tidy scope, so it is always reported to
// V8: an optimizer left to the GC is then collected before its moments pile up.
void TrackOptimizer(napi_env env, int countDelta, int64_t stateBytesDelta, int64_t paramBytesDelta) {
  g_numOptimizers += countDelta;
  g_optimizerStateBytes += stateBytesDelta;
  g_optimizerParamBytes += paramBytesDelta;
  int64_t ignored;
  if (stateBytesDelta) napi_adjust_external_memory(env, stateBytesDelta, &ignored);
}

NS_FN(SetExternalReporting) {
  g_report = ArgBool(info, 0, "setExternalReporting", "enabled");
  return info.Env().Undefined();
}

NS_FN(Memory) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int64_t stateBytes = g_optimizerStateBytes.load();
  o.Set("numTensors", Napi::Number::New(env, static_cast<double>(g_numTensors.load())));
  o.Set("numBytes", Napi::Number::New(env, static_cast<double>(g_numBytes.load() + stateBytes)));
  o.Set("numOptimizers", Napi::Number::New(env, static_cast<double>(g_numOptimizers.load())));
  o.Set("optimizerStateBytes", Napi::Number::New(env, static_cast<double>(stateBytes)));
  o.Set("optimizerParamBytes", Napi::Number::New(env, static_cast<double>(g_optimizerParamBytes.load())));
  return o;
}

// libtorch builds without MKL (Debian's) call BLAS (OpenBLAS) for some ops, e.g. transposed
// convolutions; OpenBLAS keeps its own pool, sized from the environment at load. Resize it with
// the intra-op count so "n threads" means n threads. A no-op when the BLAS has no such call.
static void SetBlasThreads(int n) {
  using Fn = void (*)(int);
  static Fn fn = nullptr;
  static bool looked = false;
  if (!looked) {
    looked = true;
    fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    for (const char* lib : {"libblas.so.3", "libopenblas.so.0", "libopenblas.so"}) {
      if (fn) break;
      void* h = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
      if (h) fn = reinterpret_cast<Fn>(dlsym(h, "openblas_set_num_threads"));
    }
  }
  if (fn) fn(n);
}

NS_FN(SetNumThreads) {
  Napi::Env env = info.Env();
  int64_t n = ArgInt(info, 0, "setNumThreads", "n");
  if (n < 1) ThrowError(env, "setNumThreads: n must be >= 1, got " + std::to_string(n));
  NS_TRY
  at::set_num_threads(static_cast<int>(n));
  SetBlasThreads(static_cast<int>(n));
  return env.Undefined();
  NS_CATCH(env)
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
  NS_EXPORT(exports, "setExternalReporting", SetExternalReporting);
  NS_EXPORT(exports, "setNumThreads", SetNumThreads);
  NS_EXPORT(exports, "getNumThreads", GetNumThreads);
  NS_EXPORT(exports, "manualSeed", ManualSeed);
  NS_EXPORT(exports, "setGradEnabled", SetGradEnabled);
  NS_EXPORT(exports, "isGradEnabled", IsGradEnabled);
  NS_EXPORT(exports, "torchVersion", TorchVersion);
}

}  // namespace ns
