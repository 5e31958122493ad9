file(REMOVE_RECURSE
  "CMakeFiles/meditron.dir/src/api.cpp.o"
  "CMakeFiles/meditron.dir/src/api.cpp.o.d"
  "CMakeFiles/meditron.dir/src/comm.cpp.o"
  "CMakeFiles/meditron.dir/src/comm.cpp.o.d"
  "CMakeFiles/meditron.dir/src/kernels.cpp.o"
  "CMakeFiles/meditron.dir/src/kernels.cpp.o.d"
  "CMakeFiles/meditron.dir/src/model.cpp.o"
  "CMakeFiles/meditron.dir/src/model.cpp.o.d"
  "CMakeFiles/meditron.dir/src/optim.cpp.o"
  "CMakeFiles/meditron.dir/src/optim.cpp.o.d"
  "libmeditron.pdb"
  "libmeditron.so"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/meditron.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
