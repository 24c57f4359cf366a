"""The HTML report of a simulated trial run (one self-contained file).

>>> from reconsolidate.report import write_report   # doctest: +SKIP
>>> write_report("runs/das2019-2019")                 # -> runs/das2019-2019/report.html
"""

from reconsolidate.report.build import build_report, write_report

__all__ = ["build_report", "write_report"]
