"""Pull-back metrics, curves and geodesics (layer 2); filled by the Riemannian-prior issue."""
