"""`python3 -m madace_status.deploy NAME [KEY=VALUE]...`: print a shipped configuration (README, "Behind a reverse
proxy")."""

from __future__ import annotations

import sys

from madace_status.deploy import main

__all__: list[str] = []

sys.exit(main())
