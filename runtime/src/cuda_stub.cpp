// cuda_stub.cpp — the CUDA entry points of a build without MEDITRON_CUDA: device "cuda" is a clear error.
#include "common.hpp"
#include "device.hpp"

namespace mt {

void cuda_check_available() {
  throw Error(MT_ERR_INVALID_ARGUMENT,
              "libmeditron was built without CUDA (rebuild with deno task build --cuda) and load that build with "
              "MEDITRON_LIB=runtime/build-cuda/libmeditron.so");
}

std::unique_ptr<DeviceBackend> make_cuda_backend(Model&) {
  cuda_check_available();
  return nullptr;
}

std::string cuda_info() { return "cuda=off"; }

}  // namespace mt
