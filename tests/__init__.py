"""trial tests for SUTO."""
