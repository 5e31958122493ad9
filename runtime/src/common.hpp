// common.hpp — errors, argument checks, threading and the counter-based RNG shared by the runtime.
#pragma once

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "meditron.h"

namespace mt {

// An error that the C ABI layer turns into a status code + thread-local message. Never crosses the ABI.
struct Error : std::runtime_error {
  int code;
  Error(int c, const std::string& msg) : std::runtime_error(msg), code(c) {}
};

// printf-style formatting into a std::string.
inline std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

#define MT_CHECK(cond, ...)                                                   \
  do {                                                                        \
    if (!(cond)) throw ::mt::Error(MT_ERR_INVALID_ARGUMENT, ::mt::format(__VA_ARGS__)); \
  } while (0)

#define MT_CHECK_PTR(p) MT_CHECK((p) != nullptr, "%s must not be null", #p)

// splitmix64: a bijective 64-bit mixer. hash(seed, stream, index) gives independent uniform streams, so a
// parameter's initial value depends only on (seed, name, element index) — the same on every rank layout.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Standard normal sample number `index` of stream `stream` (Box–Muller on two hashed uniforms).
inline float normal_at(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t a = splitmix64(seed ^ splitmix64(stream ^ splitmix64(2 * index)));
  uint64_t b = splitmix64(seed ^ splitmix64(stream ^ splitmix64(2 * index + 1)));
  double u1 = ((a >> 11) + 1.0) * (1.0 / 9007199254740993.0);  // (0, 1]
  double u2 = (b >> 11) * (1.0 / 9007199254740992.0);          // [0, 1)
  return (float)(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace mt
