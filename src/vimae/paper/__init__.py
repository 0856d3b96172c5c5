"""The paper's reproduction: its experiments and numbers, the runs they need, the verdicts and the
report. The library never imports this package (a test reads the imports).
"""
