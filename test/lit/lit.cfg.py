# lit configuration for m2c's FileCheck tests.
import os
import lit.formats
from lit.llvm import llvm_config

config.name = "m2c"
# bash, so tests can assert exact exit codes with $?.
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.m2c_obj_root, "test", "lit")

# m2c's tools first, then LLVM 22's FileCheck/not/count (the unversioned
# LLVM on PATH is older and must never be picked up).
llvm_config.with_system_environment(["HOME", "TMPDIR"])
llvm_config.with_environment("PATH", [config.m2c_tools_dir, config.llvm_tools_dir],
                             append_path=True)
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
if os.path.exists(config.ptxas):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", config.ptxas))
