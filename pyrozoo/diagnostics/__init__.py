"""The ArviZ bridge (layer 5): posterior draws as InferenceData and PSIS k̂; Stein-mixture diagnostics."""

from pyrozoo.diagnostics.arviz_bridge import psis_khat, to_inference_data
from pyrozoo.diagnostics.stein import chart_diagnostics, mixture_inference_data, plot_charts, plot_component_means

__all__ = ["psis_khat", "to_inference_data", "chart_diagnostics", "mixture_inference_data", "plot_charts",
           "plot_component_means"]
