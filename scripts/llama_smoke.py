#!/usr/bin/env python3
"""Smoke check of the installed llama-cpp-python: right version, loads its libraries, no AMX.

    python scripts/llama_smoke.py [EXPECTED_VERSION]

AMX is what crashed the -march=native build on our VMs (SIGILL), so a build with any AMX feature is refused.
Running a real model is the test suite's job.
"""

import re
import sys

import llama_cpp
import llama_cpp.llama_cpp as lib

info = lib.llama_print_system_info()
info = info.decode() if isinstance(info, bytes) else str(info)
print(f"    llama_cpp {llama_cpp.__version__} from {llama_cpp.__file__}")
print(f"    system info: {info.strip()}")
if len(sys.argv) > 1 and llama_cpp.__version__ != sys.argv[1]:
    sys.exit(f"error: llama_cpp is {llama_cpp.__version__}, expected {sys.argv[1]}")
amx = re.findall(r"(AMX\w*)\s*=\s*1", info)
if amx:
    sys.exit(f"error: this llama.cpp build uses {', '.join(amx)}; build with -DGGML_NATIVE=OFF and no AMX")
