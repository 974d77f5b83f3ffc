"""Put on PYTHONPATH by bench/capacity.py for its server only: see bench/_capacity_stats.py."""

import os
import sys

if os.environ.get("BENCH_STATS_DIR"):
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import _capacity_stats

    _capacity_stats.install()
