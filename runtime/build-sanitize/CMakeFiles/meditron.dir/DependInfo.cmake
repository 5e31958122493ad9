
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/runtime/src/api.cpp" "CMakeFiles/meditron.dir/src/api.cpp.o" "gcc" "CMakeFiles/meditron.dir/src/api.cpp.o.d"
  "/work/main/runtime/src/comm.cpp" "CMakeFiles/meditron.dir/src/comm.cpp.o" "gcc" "CMakeFiles/meditron.dir/src/comm.cpp.o.d"
  "/work/main/runtime/src/kernels.cpp" "CMakeFiles/meditron.dir/src/kernels.cpp.o" "gcc" "CMakeFiles/meditron.dir/src/kernels.cpp.o.d"
  "/work/main/runtime/src/model.cpp" "CMakeFiles/meditron.dir/src/model.cpp.o" "gcc" "CMakeFiles/meditron.dir/src/model.cpp.o.d"
  "/work/main/runtime/src/optim.cpp" "CMakeFiles/meditron.dir/src/optim.cpp.o" "gcc" "CMakeFiles/meditron.dir/src/optim.cpp.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
