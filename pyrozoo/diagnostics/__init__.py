"""The ArviZ bridge (layer 5): posterior draws as InferenceData and PSIS k̂."""

from pyrozoo.diagnostics.arviz_bridge import psis_khat, to_inference_data

__all__ = ["psis_khat", "to_inference_data"]
