// c10d for noduleseg: a TCPStore rendezvous and a Gloo process group, with all-reduce, broadcast
// and barrier over JS typed arrays (at::from_blob on their memory: no copy in the call). Its own
// addon, so that the main addon builds without the Gloo headers and only distributed runs load it.
//
// Failures name this rank and the peer: a heartbeat thread bumps a counter per rank in the store,
// and after a failed collective the counters that stopped moving (or a store that is gone, when
// rank 0 died) say which peer was lost.
#include <napi.h>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using std::chrono::milliseconds;

const char* const kHeartbeatPrefix = "noduleseg/hb/";
const char* const kWorkerPrefix = "noduleseg/worker/";
constexpr int kHeartbeatPeriodMs = 500;

std::vector<uint8_t> Bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::string Text(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

// c10::Error's what() carries a C++ backtrace; users need the message only.
std::string MessageOf(const std::exception_ptr& ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

std::string FirstLines(const std::string& s, size_t maxLines) {
  std::istringstream in(s);
  std::string line, out;
  for (size_t i = 0; i < maxLines && std::getline(in, line); i++) out += (i ? "; " : "") + line;
  return out;
}

bool IsLoopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

c10::intrusive_ptr<c10d::TCPStore> Connect(const std::string& host, uint16_t port, bool server, c10::optional<size_t> workers, bool wait, milliseconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = port;
  o.isServer = server;
  o.numWorkers = workers;
  o.waitWorkers = wait;
  o.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(host, o);
}

class ProcessGroup : public Napi::ObjectWrap<ProcessGroup> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "ProcessGroup",
                       {
                           InstanceMethod<&ProcessGroup::AllReduce>("allReduce"),
                           InstanceMethod<&ProcessGroup::Broadcast>("broadcast"),
                           InstanceMethod<&ProcessGroup::Barrier>("barrier"),
                           InstanceMethod<&ProcessGroup::StoreSet>("storeSet"),
                           InstanceMethod<&ProcessGroup::StoreGet>("storeGet"),
                           InstanceMethod<&ProcessGroup::Diagnose>("diagnose"),
                           InstanceMethod<&ProcessGroup::Shutdown>("shutdown"),
                           InstanceAccessor<&ProcessGroup::Rank>("rank"),
                           InstanceAccessor<&ProcessGroup::WorldSize>("worldSize"),
                       });
  }

  // new ProcessGroup({masterAddr, masterPort, worldSize, rank, timeoutMs, connectTimeoutMs})
  explicit ProcessGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroup>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "ProcessGroup: expected an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    auto num = [&](const char* k) -> double {
      Napi::Value v = o.Get(k);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("ProcessGroup: ") + k + " must be a number");
      return v.As<Napi::Number>().DoubleValue();
    };
    Napi::Value addr = o.Get("masterAddr");
    if (!addr.IsString()) throw Napi::TypeError::New(env, "ProcessGroup: masterAddr must be a string");
    host_ = addr.As<Napi::String>().Utf8Value();
    port_ = static_cast<uint16_t>(num("masterPort"));
    size_ = static_cast<int>(num("worldSize"));
    rank_ = static_cast<int>(num("rank"));
    timeout_ = milliseconds(static_cast<int64_t>(num("timeoutMs")));
    const milliseconds connectTimeout(static_cast<int64_t>(num("connectTimeoutMs")));
    if (size_ < 1 || rank_ < 0 || rank_ >= size_) throw Napi::RangeError::New(env, "ProcessGroup: need 0 <= rank < worldSize");
    const std::string where = Where();
    try {
      // Rank 0 hosts the store and waits (up to connectTimeout) until every rank has joined.
      store_ = Connect(host_, port_, rank_ == 0, static_cast<size_t>(size_), true, connectTimeout);
    } catch (...) {
      throw Napi::Error::New(env, where + ": rendezvous at " + host_ + ":" + std::to_string(port_) + " failed: " + FirstLines(MessageOf(std::current_exception()), 2));
    }
    try {
      char hostname[256] = {0};
      gethostname(hostname, sizeof(hostname) - 1);
      store_->set(kWorkerPrefix + std::to_string(rank_), Bytes(std::string(hostname) + " pid " + std::to_string(getpid())));
      store_->set(kHeartbeatPrefix + std::to_string(rank_), Bytes("0"));
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout_);
      // Like PyTorch: GLOO_SOCKET_IFNAME picks the interface; a loopback master means one machine.
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (IsLoopback(host_)) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank_, size_, opts);
      for (int r = 0; r < size_; r++) names_.push_back(Text(store_->get(kWorkerPrefix + std::to_string(r))));
    } catch (...) {
      throw Napi::Error::New(env, where + ": setting up the Gloo process group failed: " + FirstLines(MessageOf(std::current_exception()), 3));
    }
    StartHeartbeat();
  }

  ~ProcessGroup() override { Stop(); }

 private:
  std::string Where() const { return "rank " + std::to_string(rank_) + " of " + std::to_string(size_); }

  void StartHeartbeat() {
    heartbeat_ = std::thread([this] {
      try {
        // Its own connection: TCPStore clients are not meant to be shared between threads.
        auto hb = Connect(host_, port_, false, c10::nullopt, false, milliseconds(5000));
        const std::string key = kHeartbeatPrefix + std::to_string(rank_);
        std::unique_lock<std::mutex> lock(stopMutex_);
        while (!stopping_) {
          lock.unlock();
          hb->add(key, 1);
          lock.lock();
          stopCv_.wait_for(lock, milliseconds(kHeartbeatPeriodMs), [this] { return stopping_; });
        }
      } catch (...) {
        // The store went away (rank 0 ended): nothing left to signal to.
      }
    });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(stopMutex_);
      stopping_ = true;
    }
    stopCv_.notify_all();
    if (heartbeat_.joinable()) heartbeat_.join();
    pg_.reset();
    store_.reset();
  }

  void CheckOpen(Napi::Env env) const {
    if (!pg_) throw Napi::Error::New(env, Where() + ": the process group is shut down");
  }

  // Which peers stopped: heartbeat counters that do not move over a few periods, or the store
  // itself gone (it lives in rank 0).
  std::string DiagnoseText() {
    std::vector<int64_t> before(size_, -1), after(size_, -1);
    try {
      auto probe = Connect(host_, port_, false, c10::nullopt, false, milliseconds(3000));
      auto read = [&](std::vector<int64_t>& out) {
        for (int r = 0; r < size_; r++) {
          const std::string key = kHeartbeatPrefix + std::to_string(r);
          if (probe->check({key})) out[r] = probe->add(key, 0);
        }
      };
      read(before);
      std::this_thread::sleep_for(milliseconds(4 * kHeartbeatPeriodMs));
      read(after);
    } catch (...) {
      return "the rendezvous store hosted by rank 0 (" + (names_.empty() ? host_ : names_[0]) + ", " + host_ + ":" + std::to_string(port_) +
             ") is unreachable: peer rank 0 has exited or its machine is unreachable";
    }
    std::string stopped;
    for (int r = 0; r < size_; r++) {
      if (r == rank_ || after[r] > before[r]) continue;
      stopped += (stopped.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + (r < static_cast<int>(names_.size()) ? " (" + names_[r] + ")" : "");
    }
    return stopped.empty() ? "every peer still sends heartbeats (a peer may be stuck, or the network dropped)"
                           : "peer " + stopped + " stopped sending heartbeats: it has exited or hangs";
  }

  [[noreturn]] void Fail(Napi::Env env, const std::string& what, const std::exception_ptr& ep) {
    const std::string msg = FirstLines(MessageOf(ep), 2);
    throw Napi::Error::New(env, Where() + ": " + what + " failed: " + msg + "; " + DiagnoseText());
  }

  void WaitAll(Napi::Env env, const std::string& what, std::vector<c10::intrusive_ptr<c10d::Work>>& works) {
    std::exception_ptr first;
    for (auto& w : works) {
      try {
        w->wait(timeout_);
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
    if (first) Fail(env, what, first);
  }

  static at::Tensor Blob(Napi::Env env, Napi::Value v, const std::string& what) {
    if (!v.IsTypedArray()) throw Napi::TypeError::New(env, what + ": expected typed arrays");
    Napi::TypedArray a = v.As<Napi::TypedArray>();
    at::ScalarType st;
    switch (a.TypedArrayType()) {
      case napi_float32_array: st = at::kFloat; break;
      case napi_float64_array: st = at::kDouble; break;
      case napi_int32_array: st = at::kInt; break;
      case napi_uint8_array: st = at::kByte; break;
      default: throw Napi::TypeError::New(env, what + ": supports Float32Array, Float64Array, Int32Array and Uint8Array");
    }
    void* data = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    return at::from_blob(data, {static_cast<int64_t>(a.ElementLength())}, at::TensorOptions().dtype(st));
  }

  static std::vector<at::Tensor> Blobs(Napi::Env env, Napi::Value v, const std::string& what) {
    if (!v.IsArray()) throw Napi::TypeError::New(env, what + ": expected an array of typed arrays");
    Napi::Array arr = v.As<Napi::Array>();
    std::vector<at::Tensor> out;
    for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(Blob(env, arr.Get(i), what));
    return out;
  }

  // allReduce(arrays, average): sums (or averages) each array over the ranks, in place. Every
  // array is sent at once and then waited for, so Gloo pipelines the buckets.
  Napi::Value AllReduce(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    std::vector<at::Tensor> ts = Blobs(env, info[0], "allReduce");
    const bool average = info.Length() > 1 && info[1].ToBoolean().Value();
    int64_t bytes = 0;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    std::exception_ptr launchError;
    for (auto& t : ts) {
      if (t.numel() == 0) continue;
      bytes += t.nbytes();
      std::vector<at::Tensor> one{t};
      c10d::AllreduceOptions o;
      o.timeout = timeout_;
      try {
        works.push_back(pg_->allreduce(one, o));
      } catch (...) {
        launchError = std::current_exception();
        break;
      }
    }
    const std::string what = "allReduce of " + std::to_string(ts.size()) + " buffers (" + std::to_string(bytes) + " bytes)";
    WaitAll(env, what, works);
    if (launchError) Fail(env, what, launchError);
    if (average && size_ > 1) {
      for (auto& t : ts) {
        if (at::isFloatingType(t.scalar_type())) t.div_(static_cast<double>(size_));
      }
    }
    return env.Undefined();
  }

  // broadcast(arrays, root): every rank's arrays take root's values.
  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    std::vector<at::Tensor> ts = Blobs(env, info[0], "broadcast");
    const int root = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    if (root < 0 || root >= size_) throw Napi::RangeError::New(env, "broadcast: root out of range");
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    std::exception_ptr launchError;
    for (auto& t : ts) {
      if (t.numel() == 0) continue;
      std::vector<at::Tensor> one{t};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      o.timeout = timeout_;
      try {
        works.push_back(pg_->broadcast(one, o));
      } catch (...) {
        launchError = std::current_exception();
        break;
      }
    }
    const std::string what = "broadcast of " + std::to_string(ts.size()) + " buffers from rank " + std::to_string(root);
    WaitAll(env, what, works);
    if (launchError) Fail(env, what, launchError);
    return env.Undefined();
  }

  // barrier(timeoutMs?): waits for every rank; the timeout defaults to the group's.
  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    milliseconds t = timeout_;
    if (info.Length() > 0 && info[0].IsNumber()) t = milliseconds(info[0].As<Napi::Number>().Int64Value());
    c10d::BarrierOptions o;
    o.timeout = t;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    try {
      works.push_back(pg_->barrier(o));
    } catch (...) {
      Fail(env, "barrier", std::current_exception());
    }
    std::exception_ptr first;
    try {
      works[0]->wait(t);
    } catch (...) {
      first = std::current_exception();
    }
    if (first) Fail(env, "barrier (timeout " + std::to_string(t.count()) + " ms)", first);
    return env.Undefined();
  }

  Napi::Value StoreSet(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    try {
      store_->set(info[0].As<Napi::String>().Utf8Value(), Bytes(info[1].As<Napi::String>().Utf8Value()));
    } catch (...) {
      Fail(env, "store set", std::current_exception());
    }
    return env.Undefined();
  }

  // storeGet(key): waits (up to the timeout) until the key is set.
  Napi::Value StoreGet(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    std::string v;
    try {
      v = Text(store_->get(info[0].As<Napi::String>().Utf8Value()));
    } catch (...) {
      Fail(env, "store get", std::current_exception());
    }
    return Napi::String::New(env, v);
  }

  Napi::Value Diagnose(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), DiagnoseText()); }

  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }

  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), rank_); }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), size_); }

  std::string host_;
  uint16_t port_ = 0;
  int size_ = 1;
  int rank_ = 0;
  milliseconds timeout_{1800000};
  c10::intrusive_ptr<c10d::TCPStore> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
  std::vector<std::string> names_;
  std::thread heartbeat_;
  std::mutex stopMutex_;
  std::condition_variable stopCv_;
  bool stopping_ = false;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("ProcessGroup", ProcessGroup::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(noduleseg_c10d, Init)
