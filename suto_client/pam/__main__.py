# -*- test-case-name: tests.client.pam.test_main -*-
"""
C{python3 -I -m suto_client.pam}: what L{suto_client.pam.main.main}
restarts itself as.
"""

from suto_client.pam.main import main

main()
