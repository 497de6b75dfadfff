"""
trial tests for SUTO.

Hypothesis runs without its timing checks (the per-example deadline and
the too-slow health check): speed is measured in bench/, never asserted by
timing inside a unit test, and on a shared machine those checks measure
the neighbours rather than the code.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "suto", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("suto")
