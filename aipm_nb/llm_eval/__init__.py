"""LLM-feature evaluation: ratings, pairwise preferences (Bradley–Terry with bootstrap CIs),
latency percentiles, cost and refusals per model and prompt version, and a head-to-head A/B
comparison of two versions (DESIGN section 4).
"""

from aipm_nb.llm_eval.analyze import LlmEvalResult, evaluate_llm, paired_preferences

__all__ = ["LlmEvalResult", "evaluate_llm", "paired_preferences"]
