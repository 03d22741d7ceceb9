import arviz as az
import matplotlib
import numpy as np
import torch

from pyrozoo.diagnostics import psis_khat, to_inference_data

matplotlib.use("Agg")


def test_inference_data_groups_and_arviz_functions(trained_vae, digits):
    x = digits.test[:4]
    idata = to_inference_data(trained_vae, x, num_samples=300)
    assert set(idata.groups()) >= {"posterior", "log_likelihood", "observed_data"}
    z = idata.posterior["z"]
    assert z.dims == ("chain", "draw", "obs", "z_dim") and z.shape == (1, 300, 4, trained_vae.z_dim)
    assert idata.log_likelihood["x"].shape == (1, 300, 4)
    assert idata.observed_data["x"].shape == (4, 64)
    # the draws follow q(z|x): their mean matches the encoder mean
    mean = trained_vae.encode(x).mean.detach().numpy()
    assert np.abs(z.mean(("chain", "draw")).values - mean).max() < 0.3
    summary = az.summary(idata, var_names=["z"], kind="stats")
    assert len(summary) == 4 * trained_vae.z_dim
    az.plot_posterior(idata, var_names=["z"], coords={"obs": [0], "z_dim": [0, 1]})
    az.plot_pair(idata, var_names=["z"], coords={"obs": [0], "z_dim": [0, 1]})


def test_psis_khat_flags_a_bad_guide(trained_vae, digits):
    x = digits.test[:30]
    good = psis_khat(trained_vae, x, num_samples=1000)
    assert good.shape == (30,) and torch.isfinite(good).all()
    # shrink the encoder's variance 30-fold: the weights get heavy tails and k-hat rises
    with torch.no_grad():
        trained_vae.encoder.logvar.bias -= np.log(900.0)
    try:
        bad = psis_khat(trained_vae, x, num_samples=1000)
    finally:
        with torch.no_grad():
            trained_vae.encoder.logvar.bias += np.log(900.0)
    assert bad.mean() > good.mean() + 0.2 and bad.mean() > 0.7
