"""
Files of the repository that tests read: the specification and the
deployment examples.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTOCOL = os.path.join(ROOT, "docs", "PROTOCOL.md")
DEPLOY = os.path.join(ROOT, "deploy")
