"""Statistics and tables: the intervals and tests, and each table
`aggregate` writes from the runs, profiles, deployments and timings.
"""
