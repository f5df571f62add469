"""`make bench`: speed benchmarks, printed as one table of medians and ratios."""
