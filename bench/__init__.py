"""Benchmarks: scripts that start real processes, drive load at them and print figures.

They are not tests and assert nothing about speed; they print measured figures next to the project's
targets and a bare-framework peer, so a regression or an improvement shows as numbers.
"""
