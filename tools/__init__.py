"""Offline commands for users and reviewers, on the mock engine the tests use."""
