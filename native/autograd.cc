// Autograd entry points: backward() and grad() through libtorch's engine.
#include "common.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

namespace ns {

// backward(t, grad | null, retainGraph, createGraph)
NS_FN(Backward) {
  Napi::Env env = info.Env();
  const at::Tensor& t = ArgTensor(info, 0, "backward", "tensor");
  auto g = ArgOptTensor(info, 1, "backward", "grad");
  bool retain = ArgBool(info, 2, "backward", "retainGraph");
  bool create = ArgBool(info, 3, "backward", "createGraph");
  if (!t.requires_grad()) ThrowError(env, "backward: tensor does not require grad (no input had requiresGrad set, or it was computed under noGrad)");
  if (!g && t.numel() != 1) ThrowError(env, "backward: grad can be implicitly created only for scalar outputs, got shape " + ShapeString(t.sizes()));
  NS_TRY
  t.backward(g ? *g : at::Tensor(), retain, create);
  return env.Undefined();
  NS_CATCH(env)
}

// grad(outputs, inputs, gradOutputs | null, retainGraph, createGraph, allowUnused) -> (Tensor | null)[]
NS_FN(Grad) {
  Napi::Env env = info.Env();
  auto outs = ArgTensors(info, 0, "grad", "outputs");
  auto ins = ArgTensors(info, 1, "grad", "inputs");
  std::vector<at::Tensor> gouts;
  if (info.Length() > 2 && !IsNullish(info[2])) gouts = ArgTensors(info, 2, "grad", "gradOutputs");
  bool retain = ArgBool(info, 3, "grad", "retainGraph");
  bool create = ArgBool(info, 4, "grad", "createGraph");
  bool unused = ArgBool(info, 5, "grad", "allowUnused");
  NS_TRY
  auto r = torch::autograd::grad(outs, ins, gouts, retain, create, unused);
  Napi::Array a = Napi::Array::New(env, r.size());
  for (size_t i = 0; i < r.size(); i++) a.Set(static_cast<uint32_t>(i), r[i].defined() ? Out(env, r[i]) : env.Null());
  return a;
  NS_CATCH(env)
}

void InitAutograd(Napi::Env env, Napi::Object exports) {
  NS_EXPORT(exports, "backward", Backward);
  NS_EXPORT(exports, "grad", Grad);
}

}  // namespace ns
