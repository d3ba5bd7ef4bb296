"""`python -m bench`: run the benchmarks against our server and soketi (see bench/driver.py)."""

import sys

from bench.driver import main

sys.exit(main())
