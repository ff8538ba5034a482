"""`python -m madace_status` entry point."""

import sys

from madace_status.cli import main

__all__: "list[str]" = []  # run as `python3 -m madace_status`, not imported

if __name__ == "__main__":
    sys.exit(main())
