# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The model
#
# This page follows section 3 of {cite:t}`fraccaro2016srnn`: the generative model, the
# structured inference network, and the bound that trains both. Each equation is followed
# by the code of `srnn` that computes it, included from the package's source files, so
# the two cannot drift apart. The next page, *The implementation*, runs the code, gives
# the models' sizes and lists where it follows the authors' code on details the paper
# leaves open.

# %% tags=["parameters"]
profile = "smoke"

# %% [markdown]
# ## The generative model
#
# The observations are $x_{1:T}$ and the inputs are the same sequence shifted by one step,
# $u_t = x_{t-1}$ with $u_1 = 0$, so the model predicts each frame from the ones before it.
# A feature extractor $\phi$ (two dense layers) maps each input, and a GRU
# {cite:p}`chung2014gru` turns the features into deterministic states,
#
# $$
# d_t = f_{\theta_d}\big(d_{t-1}, \phi(u_t)\big).
# $$
#
# The stochastic layer is a chain of Gaussian latent states whose transition reads the
# deterministic state below it,
#
# $$
# p_{\theta_z}(z_t \mid z_{t-1}, d_t) = \mathcal{N}\big(z_t;\ \mu^{(p)}_t, v^{(p)}_t\big),
# \qquad
# \big[\mu^{(p)}_t, \log v^{(p)}_t\big] = \mathrm{NN}^{(p)}(z_{t-1}, d_t),
# $$
#
# and the emission $p_{\theta_x}(x_t \mid z_t, d_t)$ reads both states: a factorized
# Gaussian with a linear mean and log-variance for raw speech, independent Bernoulli
# variables over the 88 piano keys for music. Together,
#
# $$
# p_\theta(x_{1:T}, z_{1:T} \mid u_{1:T}, z_0, d_0)
#   = \prod_{t=1}^{T} p_{\theta_x}(x_t \mid z_t, d_t)\, p_{\theta_z}(z_t \mid z_{t-1}, d_t).
# $$
#
# Every hidden layer uses a leaky rectifier with slope 1/3, clipped to $[-3, 3]$:
#
# ```{literalinclude} ../../srnn/models/model.py
# :pyobject: act
# ```
#
# The prior and the posterior share one shape of network: a hidden layer for the mean and
# one for the log-variance, both reading a context ($d_t$ for the prior, $a_t$ for the
# posterior) next to $z_{t-1}$, and a variance floor of $10^{-6}$ as in the authors' code.
#
# ```{literalinclude} ../../srnn/models/model.py
# :pyobject: GaussianHead
# ```
#
# ```{literalinclude} ../../srnn/models/model.py
# :pyobject: Emission
# ```

# %% [markdown]
# ## The inference network
#
# Given $d_{1:T}$, the true posterior factorizes as
# $p(z_{1:T} \mid d_{1:T}, x_{1:T}) = \prod_t p(z_t \mid z_{t-1}, d_{t:T}, x_{t:T})$: the
# latent state at step $t$ needs the previous one and everything from $t$ on. SRNN's
# inference network copies this structure: a backward GRU over the deterministic states
# and the shared features of the observations summarizes the future,
#
# $$
# a_t = g_{\varphi_a}\big(a_{t+1}, [d_t, \phi(x_t)]\big),
# \qquad
# q_\varphi(z_t \mid z_{t-1}, a_t) = \mathcal{N}\big(z_t;\ \mu^{(q)}_t, v^{(q)}_t\big).
# $$
#
# This is the *smoothing* variant. The *filtering* variant replaces the backward GRU by an
# MLP on $[d_t, \phi(x_t)]$ (the original's `num_layers_mlp` layers: one for music, two for
# speech), so $q$ sees only the present. With **Resq** the posterior network outputs not
# its mean but a correction to the prior's mean at the same step and $z_{t-1}$,
#
# $$
# \mu^{(q)}_t = \mu^{(p)}_t + \Delta\mu_t ,
# $$
#
# so early in training, while the correction is near zero, the posterior starts at the
# prior and the KL term is small. The constructor builds the parts named above:
#
# ```{literalinclude} ../../srnn/models/model.py
# :pyobject: SRNN.__init__
# ```

# %% [markdown]
# ## The evidence lower bound
#
# Because $d_{1:T}$ is a deterministic function of the inputs, the bound is a sum over
# steps of an expected log-likelihood minus a KL divergence between two Gaussians, which
# is computed in closed form given the sampled $z_{t-1}$:
#
# $$
# \mathcal{F}(\theta, \varphi) = \sum_{t=1}^{T}
#   \mathbb{E}_{q^\star_\varphi(z_{t-1})}\Big[
#     \mathbb{E}_{q_\varphi(z_t \mid z_{t-1}, a_t)} \log p_{\theta_x}(x_t \mid z_t, d_t)
#     - \beta\, \mathrm{KL}\big(q_\varphi(z_t \mid z_{t-1}, a_t)\,\big\|\,
#                                p_{\theta_z}(z_t \mid z_{t-1}, d_t)\big)\Big].
# $$
#
# One sample path of $z_{1:T}$ estimates the outer expectations, and the
# reparameterization $z_t = \mu^{(q)}_t + \sqrt{v^{(q)}_t}\,\epsilon_t$ carries the gradient
# through it {cite:p}`kingma2014vae,rezende2014`. The temperature $\beta$ grows from a small
# value to 1 during training (KL annealing, see *Experiments*). The forward pass runs all
# that depends only on observed data over the whole window at once; the chain of
# posterior samples is the one loop over time:
#
# ```{literalinclude} ../../srnn/models/model.py
# :pyobject: SRNN.forward
# ```
#
# ```{literalinclude} ../../srnn/models/model.py
# :pyobject: gaussian_kl
# ```
#
# Training minimizes the negative bound per observed step. The importance-weighted bound
# of {cite:t}`burda2016iwae` with $K > 1$ posterior samples is tighter; `srnn.training.evaluate`
# reports it next to the ELBO.
#
# ```{literalinclude} ../../srnn/models/objective.py
# :pyobject: training_loss
# ```
