"""Deterministic analyzers: typed findings with checked evidence from the calls made.

They are the floor of every investigation: they work with any model and with none.
"""

from services.investigation.analyzers.finding import AnalyzerFinding
from services.investigation.analyzers.registry import ANALYZERS, analyze

__all__ = ["ANALYZERS", "AnalyzerFinding", "analyze"]
