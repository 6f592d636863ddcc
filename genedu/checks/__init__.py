"""Checkers for the chapters' exercises: call one with your function to hear if it is right.

Each checker runs your function on fresh random inputs, compares it with genedu's own
implementation, prints a verdict with a hint, and returns True or False. A function
that still returns None counts as "not attempted yet", so a chapter runs top to
bottom before you have written anything.
"""

from .apps import (
    auroc_by_pairs,
    balanced_subset,
    corrected_score,
    gram_matrix,
    hidden_agreement,
    nn_completion,
    t_interval,
    zlib_complexity,
)
from .diffusion import ddim_step, flow_target, guided, noised
from .models import (
    active_units,
    bernoulli_log_prob,
    bigram_probabilities,
    bits_per_dim,
    causal_attention,
    causal_mask,
    discrete_bits_per_dim,
    discretized_logistic_log_prob,
    frechet_distance,
    gaussian_kl_between,
    gaussian_log_likelihood,
    knn_precision,
    log_mean_exp,
    mixed_styles,
    modulated_conv2d,
    nonsaturating_generator_loss,
    top_p_filter,
    truncate,
)

__all__ = [
    "active_units",
    "auroc_by_pairs",
    "balanced_subset",
    "bernoulli_log_prob",
    "bigram_probabilities",
    "bits_per_dim",
    "causal_attention",
    "causal_mask",
    "corrected_score",
    "ddim_step",
    "discrete_bits_per_dim",
    "discretized_logistic_log_prob",
    "flow_target",
    "frechet_distance",
    "gaussian_kl_between",
    "gaussian_log_likelihood",
    "gram_matrix",
    "guided",
    "hidden_agreement",
    "knn_precision",
    "log_mean_exp",
    "mixed_styles",
    "modulated_conv2d",
    "nn_completion",
    "noised",
    "nonsaturating_generator_loss",
    "t_interval",
    "top_p_filter",
    "truncate",
    "zlib_complexity",
]
