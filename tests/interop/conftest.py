"""Interop tests run real sockets on 127.0.0.1; their helpers live in `interop_helpers.py` beside this file."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # so test modules can `import interop_helpers` whatever pytest's import mode
    sys.path.insert(0, HERE)
