"""``python -m labkit.sandbox.agent``: run one lab's workload agent (see ``process.main``)."""

import sys

from labkit.sandbox.agent.process import main

if __name__ == "__main__":
    sys.exit(main())
