"""Helpers shared by the test suites: real broker, real worker processes, scraping."""
