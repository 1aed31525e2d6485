"""Funnels: conversion through ordered steps within a window, drop-off, time to convert,
breakdowns with tests and experiment arms per step, all matched in the engine (DESIGN section 4).
"""

from aipm_nb.funnel.analyze import FunnelResult, analyze_funnel, paired_assignments

__all__ = ["FunnelResult", "analyze_funnel", "paired_assignments"]
