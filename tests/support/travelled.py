"""Run a module (`python travelled.py MODULE ARGS…`) with the clock at $HARNESS_NOW (epoch
seconds), ticking: an app process started by a test session whose clock time-machine moved."""

from __future__ import annotations

import os
import runpy
import sys

import time_machine

if __name__ == "__main__":
    time_machine.travel(float(os.environ["HARNESS_NOW"]), tick=True).start()
    sys.path[0] = os.getcwd()  # as `python -m` would have it, not this file's folder
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
