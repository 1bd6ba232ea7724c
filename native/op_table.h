// The op table (native/ops.def) as C++: one enum and one name array per family. The codes the JS
// side sends are positions in these lists; src/native/op-codes.ts is generated from the same file.
#pragma once

#include <ATen/core/Reduction.h>
#include <c10/core/ScalarType.h>

#include <cstdint>

namespace ns {

enum class BinaryOp : int {
#define NS_BINARY(name, expr) name,
#include "ops.def"
  kCount
};
enum class UnaryOp : int {
#define NS_UNARY(name, expr) name,
#include "ops.def"
  kCount
};
enum class ReduceOp : int {
#define NS_REDUCE(name, expr) name,
#include "ops.def"
  kCount
};
enum class PointLossKind : int {
#define NS_POINT_LOSS(name, expr) name,
#include "ops.def"
  kCount
};
enum class InterpMode : int {
#define NS_INTERP_MODE(name) name,
#include "ops.def"
  kCount
};
enum class OptimizerKind : int {
#define NS_OPTIMIZER_KIND(name) name,
#include "ops.def"
  kCount
};

inline constexpr const char* kBinaryNames[] = {
#define NS_BINARY(name, expr) #name,
#include "ops.def"
};
inline constexpr const char* kUnaryNames[] = {
#define NS_UNARY(name, expr) #name,
#include "ops.def"
};
inline constexpr const char* kReduceNames[] = {
#define NS_REDUCE(name, expr) #name,
#include "ops.def"
};
inline constexpr const char* kPointLossNames[] = {
#define NS_POINT_LOSS(name, expr) #name,
#include "ops.def"
};
inline constexpr const char* kInterpModeNames[] = {
#define NS_INTERP_MODE(name) #name,
#include "ops.def"
};
inline constexpr const char* kReductionNames[] = {
#define NS_REDUCTION(name, value) #name,
#include "ops.def"
};
inline constexpr const char* kOptimizerKindNames[] = {
#define NS_OPTIMIZER_KIND(name) #name,
#include "ops.def"
};
// `bool` is a dtype name, so dtypes have no enum: a code indexes these arrays.
inline constexpr const char* kDTypeNames[] = {
#define NS_DTYPE(name, scalarType) #name,
#include "ops.def"
};
inline constexpr c10::ScalarType kDTypes[] = {
#define NS_DTYPE(name, scalarType) scalarType,
#include "ops.def"
};
inline constexpr int64_t kReductions[] = {
#define NS_REDUCTION(name, value) value,
#include "ops.def"
};

template <typename T, size_t N>
constexpr int Count(const T (&)[N]) { return static_cast<int>(N); }

static_assert(Count(kBinaryNames) == static_cast<int>(BinaryOp::kCount));
static_assert(Count(kUnaryNames) == static_cast<int>(UnaryOp::kCount));
static_assert(Count(kReduceNames) == static_cast<int>(ReduceOp::kCount));
static_assert(Count(kPointLossNames) == static_cast<int>(PointLossKind::kCount));
static_assert(Count(kInterpModeNames) == static_cast<int>(InterpMode::kCount));
static_assert(Count(kOptimizerKindNames) == static_cast<int>(OptimizerKind::kCount));
static_assert(Count(kDTypeNames) == Count(kDTypes));
static_assert(Count(kReductionNames) == Count(kReductions));

}  // namespace ns
