// Optimizers (SGD with momentum/Nesterov, Adam, AdamW) with parameter groups, written with ATen
// in-place ops exactly as torch/optim's single-tensor implementations, plus gradient clipping.
// Own code instead of torch::optim: its state layout changed between libtorch 1.13 and 2.x, and
// saving state by parameter index needs direct access to it.
#include "common.h"
#include "op_table.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <limits>

namespace ns {

struct Group {
  std::vector<at::Tensor> params;
  double lr = 1e-3, weightDecay = 0, momentum = 0, dampening = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool nesterov = false, amsgrad = false;
};

struct ParamState {
  bool init = false;
  double step = 0;
  at::Tensor expAvg, expAvgSq, maxExpAvgSq, momentumBuffer;
};

static int64_t BytesOf(const at::Tensor& t) {
  return t.defined() ? static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size()) : 0;
}

// An optimizer owns references to its parameters and their state. Both are counted by memory()
// (memory.cc) from construction until dispose() or, without it, the GC finaliser.
class OptimizerWrap : public Napi::ObjectWrap<OptimizerWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    using T = OptimizerWrap;
    return DefineClass(env, "NativeOptimizer",
        {
            CheckedMethod<T, &T::Step>("step"),
            CheckedMethod<T, &T::ZeroGrad>("zeroGrad"),
            CheckedMethod<T, &T::SetLr>("setLr"),
            CheckedMethod<T, &T::GetLr>("getLr"),
            CheckedMethod<T, &T::SetWeightDecay>("setWeightDecay"),
            CheckedMethod<T, &T::GetState>("getState"),
            CheckedMethod<T, &T::SetState>("setState"),
            CheckedMethod<T, &T::NumParams>("numParams"),
            CheckedMethod<T, &T::StateBytes>("stateBytes"),
            PrototypeFunction<T, &T::DisposeThis>("dispose"),
            PrototypeFunction<T, &T::IsDisposedThis>("isDisposed"),
        });
  }

  // The optimizer behind `this`: a TypeError for anything but an optimizer handle (checked by
  // type tag), an Error once disposed unless allowDisposed.
  static OptimizerWrap* Self(const Napi::CallbackInfo& info, bool allowDisposed = false) {
    Napi::Value self = info.This();
    if (!self.IsObject() || !self.As<Napi::Object>().CheckTypeTag(&kOptimizerTypeTag)) {
      ThrowType(info.Env(), "NativeOptimizer method called on " + Described(self) + ", not an optimizer handle");
    }
    void* p = nullptr;
    if (napi_unwrap(info.Env(), self, &p) != napi_ok || p == nullptr) ThrowError(info.Env(), "optimizer: internal: handle has no native object");
    auto* o = static_cast<OptimizerWrap*>(p);
    if (o->disposed_ && !allowDisposed) ThrowError(info.Env(), "optimizer already disposed");
    return o;
  }

  // new NativeOptimizer(kind, groups): kind an OptimizerKind code (native/ops.def).
  explicit OptimizerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OptimizerWrap>(info) {
    Napi::Env env = info.Env();
    int64_t kind = ArgInt(info, 0, "optimizer", "kind");
    if (kind < 0 || kind >= static_cast<int64_t>(OptimizerKind::kCount)) ThrowError(env, "optimizer: unknown kind " + std::to_string(kind));
    kind_ = static_cast<OptimizerKind>(kind);
    if (info.Length() < 2 || !info[1].IsArray()) ThrowType(env, "optimizer: groups must be an array");
    Napi::Array gs = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < gs.Length(); i++) {
      Napi::Value gv = gs.Get(i);
      if (!gv.IsObject()) ThrowType(env, "optimizer: groups[" + std::to_string(i) + "] must be an object");
      Napi::Object g = gv.As<Napi::Object>();
      Group grp;
      Napi::Value ps = g.Get("params");
      if (!ps.IsArray()) ThrowType(env, "optimizer: groups[" + std::to_string(i) + "].params must be an array of Tensors");
      Napi::Array pa = ps.As<Napi::Array>();
      for (uint32_t k = 0; k < pa.Length(); k++) {
        const at::Tensor& p = TensorOrThrow(env, pa.Get(k), "optimizer: groups[" + std::to_string(i) + "].params[" + std::to_string(k) + "]");
        if (!p.is_floating_point()) ThrowError(env, "optimizer: parameters must be floating point");
        grp.params.push_back(p);
      }
      grp.lr = Num(g, "lr");
      grp.weightDecay = Num(g, "weightDecay");
      grp.momentum = Num(g, "momentum");
      grp.dampening = Num(g, "dampening");
      grp.beta1 = Num(g, "beta1");
      grp.beta2 = Num(g, "beta2");
      grp.eps = Num(g, "eps");
      grp.nesterov = g.Get("nesterov").ToBoolean().Value();
      grp.amsgrad = g.Get("amsgrad").ToBoolean().Value();
      groups_.push_back(std::move(grp));
    }
    size_t n = 0;
    for (auto& g : groups_) {
      n += g.params.size();
      for (auto& p : g.params) paramBytes_ += BytesOf(p);
    }
    state_.resize(n);
    // Tagged and counted last: a constructor that threw above leaves nothing to undo.
    info.This().As<Napi::Object>().TypeTag(&kOptimizerTypeTag);
    TrackOptimizer(env, 1, 0, paramBytes_);
    counted_ = true;
  }

  ~OptimizerWrap() override { Release(Env()); }

 private:
  static double Num(Napi::Object o, const char* key) {
    Napi::Value v = o.Get(key);
    if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("optimizer: group field ") + key + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
  }

  Group& GroupAt(Napi::Env env, const Napi::CallbackInfo& info) {
    int64_t g = ArgInt(info, 0, "optimizer", "group");
    if (g < 0 || g >= static_cast<int64_t>(groups_.size())) ThrowError(env, "optimizer: group index " + std::to_string(g) + " out of range");
    return groups_[g];
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    NS_TRY
    at::NoGradGuard ng;
    size_t idx = 0;
    for (auto& g : groups_) {
      for (auto& p : g.params) {
        ParamState& st = state_[idx++];
        const at::Tensor& grad = p.grad();
        if (!grad.defined()) continue;
        if (kind_ == OptimizerKind::SGD) StepSGD(g, p, grad, st);
        else StepAdam(g, p, grad, st, kind_ == OptimizerKind::AdamW);
      }
    }
    Recount(env);
    return env.Undefined();
    NS_CATCH(env)
  }

  static void StepSGD(const Group& g, at::Tensor& p, const at::Tensor& grad, ParamState& st) {
    at::Tensor d = grad;
    if (g.weightDecay != 0) d = d.add(p, g.weightDecay);
    if (g.momentum != 0) {
      if (!st.momentumBuffer.defined()) {
        st.momentumBuffer = d.clone().detach();
      } else {
        st.momentumBuffer.mul_(g.momentum).add_(d, 1 - g.dampening);
      }
      d = g.nesterov ? d.add(st.momentumBuffer, g.momentum) : st.momentumBuffer;
    }
    st.init = true;
    p.add_(d, -g.lr);
  }

  static void StepAdam(const Group& g, at::Tensor& p, const at::Tensor& grad0, ParamState& st, bool decoupled) {
    if (!st.init) {
      st.init = true;
      st.step = 0;
      st.expAvg = at::zeros_like(p, at::MemoryFormat::Preserve);
      st.expAvgSq = at::zeros_like(p, at::MemoryFormat::Preserve);
      if (g.amsgrad) st.maxExpAvgSq = at::zeros_like(p, at::MemoryFormat::Preserve);
    }
    st.step += 1;
    at::Tensor grad = grad0;
    if (decoupled) {
      if (g.weightDecay != 0) p.mul_(1 - g.lr * g.weightDecay);
    } else if (g.weightDecay != 0) {
      grad = grad.add(p, g.weightDecay);
    }
    st.expAvg.mul_(g.beta1).add_(grad, 1 - g.beta1);
    st.expAvgSq.mul_(g.beta2).addcmul_(grad, grad, 1 - g.beta2);
    double bc1 = 1 - std::pow(g.beta1, st.step);
    double bc2 = 1 - std::pow(g.beta2, st.step);
    double stepSize = g.lr / bc1;
    double bc2Sqrt = std::sqrt(bc2);
    at::Tensor denom;
    if (g.amsgrad) {
      if (!st.maxExpAvgSq.defined()) st.maxExpAvgSq = at::zeros_like(p, at::MemoryFormat::Preserve);
      at::maximum_out(st.maxExpAvgSq, st.maxExpAvgSq, st.expAvgSq);
      denom = (st.maxExpAvgSq.sqrt() / bc2Sqrt).add_(g.eps);
    } else {
      denom = (st.expAvgSq.sqrt() / bc2Sqrt).add_(g.eps);
    }
    p.addcdiv_(st.expAvg, denom, -stepSize);
  }

  // zeroGrad(setToNone)
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bool none = ArgBool(info, 0, "zeroGrad", "setToNone");
    NS_TRY
    at::NoGradGuard ng;
    for (auto& g : groups_) {
      for (auto& p : g.params) {
        at::Tensor& gr = p.mutable_grad();
        if (!gr.defined()) continue;
        if (none) {
          gr = at::Tensor();
        } else {
          gr = gr.detach();
          gr.zero_();
        }
      }
    }
    return env.Undefined();
    NS_CATCH(env)
  }

  Napi::Value SetLr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Group& g = GroupAt(env, info);
    g.lr = ArgNumber(info, 1, "optimizer", "lr");
    return env.Undefined();
  }

  Napi::Value GetLr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Napi::Number::New(env, GroupAt(env, info).lr);
  }

  Napi::Value SetWeightDecay(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Group& g = GroupAt(env, info);
    g.weightDecay = ArgNumber(info, 1, "optimizer", "weightDecay");
    return env.Undefined();
  }

  const at::Tensor& ParamAt(Napi::Env env, int64_t i) {
    if (i < 0 || i >= static_cast<int64_t>(state_.size())) ThrowError(env, "optimizer: parameter index " + std::to_string(i) + " out of range");
    int64_t k = i;
    for (auto& g : groups_) {
      if (k < static_cast<int64_t>(g.params.size())) return g.params[k];
      k -= g.params.size();
    }
    ThrowError(env, "optimizer: parameter index out of range");
  }

  // getState(i) -> {step, tensors} (copies) or null before the first step.
  Napi::Value GetState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t i = ArgInt(info, 0, "optimizer.getState", "index");
    ParamAt(env, i);
    NS_TRY
    const ParamState& st = state_[i];
    if (!st.init) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    o.Set("step", Napi::Number::New(env, st.step));
    Napi::Object ts = Napi::Object::New(env);
    if (st.expAvg.defined()) ts.Set("exp_avg", Out(env, st.expAvg.detach().clone()));
    if (st.expAvgSq.defined()) ts.Set("exp_avg_sq", Out(env, st.expAvgSq.detach().clone()));
    if (st.maxExpAvgSq.defined()) ts.Set("max_exp_avg_sq", Out(env, st.maxExpAvgSq.detach().clone()));
    if (st.momentumBuffer.defined()) ts.Set("momentum_buffer", Out(env, st.momentumBuffer.detach().clone()));
    o.Set("tensors", ts);
    return o;
    NS_CATCH(env)
  }

  // setState(i, step, tensors): copies; each tensor must match the parameter's shape.
  Napi::Value SetState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t i = ArgInt(info, 0, "optimizer.setState", "index");
    const at::Tensor& p = ParamAt(env, i);
    double step = ArgNumber(info, 1, "optimizer.setState", "step");
    if (info.Length() < 3 || !info[2].IsObject()) ThrowType(env, "optimizer.setState: tensors must be an object");
    Napi::Object ts = info[2].As<Napi::Object>();
    NS_TRY
    ParamState st;
    st.init = true;
    st.step = step;
    Napi::Array keys = ts.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); k++) {
      std::string name = keys.Get(k).As<Napi::String>().Utf8Value();
      const at::Tensor& t = TensorOrThrow(env, ts.Get(name), "optimizer.setState: state '" + name + "'");
      if (!t.sizes().equals(p.sizes())) {
        ThrowError(env, "optimizer.setState: state '" + name + "' of parameter " + std::to_string(i) + " has shape " +
                            ShapeString(t.sizes()) + ", parameter has " + ShapeString(p.sizes()));
      }
      at::Tensor c = t.detach().to(p.scalar_type()).clone();
      if (name == "exp_avg") st.expAvg = c;
      else if (name == "exp_avg_sq") st.expAvgSq = c;
      else if (name == "max_exp_avg_sq") st.maxExpAvgSq = c;
      else if (name == "momentum_buffer") st.momentumBuffer = c;
      else ThrowError(env, "optimizer.setState: unknown state '" + name + "'");
    }
    if (kind_ != OptimizerKind::SGD && (!st.expAvg.defined() || !st.expAvgSq.defined())) {
      ThrowError(env, "optimizer.setState: Adam state of parameter " + std::to_string(i) + " needs exp_avg and exp_avg_sq");
    }
    state_[i] = std::move(st);
    Recount(env);
    return env.Undefined();
    NS_CATCH(env)
  }

  Napi::Value NumParams(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(state_.size()));
  }

  // stateBytes() -> this optimizer's state bytes (its part of memory().optimizerStateBytes).
  Napi::Value StateBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(stateBytes_));
  }

  // dispose(): drops the state and the parameter references now (idempotent); every other
  // method then throws "optimizer already disposed".
  static Napi::Value DisposeThis(const Napi::CallbackInfo& info) {
    OptimizerWrap* o = Self(info, true);
    o->Release(info.Env());
    o->disposed_ = true;
    return info.Env().Undefined();
  }

  static Napi::Value IsDisposedThis(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), Self(info, true)->disposed_);
  }

  // Brings memory()'s optimizer state bytes in line with state_ (after a step or a load).
  void Recount(napi_env env) {
    int64_t bytes = 0;
    for (const auto& st : state_) bytes += BytesOf(st.expAvg) + BytesOf(st.expAvgSq) + BytesOf(st.maxExpAvgSq) + BytesOf(st.momentumBuffer);
    if (bytes != stateBytes_) TrackOptimizer(env, 0, bytes - stateBytes_, 0);
    stateBytes_ = bytes;
  }

  void Release(napi_env env) {
    groups_.clear();
    groups_.shrink_to_fit();
    state_.clear();
    state_.shrink_to_fit();
    if (counted_) TrackOptimizer(env, -1, -stateBytes_, -paramBytes_);
    counted_ = false;
    stateBytes_ = 0;
    paramBytes_ = 0;
  }

  OptimizerKind kind_ = OptimizerKind::SGD;
  std::vector<Group> groups_;
  std::vector<ParamState> state_;
  int64_t stateBytes_ = 0;
  int64_t paramBytes_ = 0;
  bool counted_ = false;
  bool disposed_ = false;
};

// clipGradNorm(params, maxNorm, normType) -> total norm (before clipping), like
// torch.nn.utils.clip_grad_norm_.
NS_FN(ClipGradNorm) {
  Napi::Env env = info.Env();
  auto params = ArgTensors(info, 0, "clipGradNorm", "params");
  double maxNorm = ArgNumber(info, 1, "clipGradNorm", "maxNorm");
  double normType = ArgNumber(info, 2, "clipGradNorm", "normType");
  NS_TRY
  at::NoGradGuard ng;
  std::vector<at::Tensor> grads;
  for (auto& p : params) if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return Napi::Number::New(env, 0);
  at::Tensor total;
  if (std::isinf(normType)) {
    std::vector<at::Tensor> m;
    for (auto& g : grads) m.push_back(g.detach().abs().max());
    total = at::stack(m).max();
  } else {
    std::vector<at::Tensor> n;
    for (auto& g : grads) n.push_back(at::linalg_vector_norm(g.detach(), normType, c10::nullopt, false));
    total = at::linalg_vector_norm(at::stack(n), normType, c10::nullopt, false);
  }
  double tn = total.item().toDouble();
  double coef = maxNorm / (tn + 1e-6);
  if (coef < 1) {
    for (auto& g : grads) const_cast<at::Tensor&>(g).mul_(coef);
  }
  return Napi::Number::New(env, tn);
  NS_CATCH(env)
}

void InitOptim(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeOptimizer", OptimizerWrap::Init(env));
  NS_EXPORT(exports, "clipGradNorm", ClipGradNorm);
}

}  // namespace ns
