"""Mutation check: break the models on purpose, one small way at a time, and make sure the
model tests notice every time.

    python scripts/mutations.py              # every mutant; prints a table, exits 1 if one survives
    python scripts/mutations.py --only clip  # the mutants whose name contains 'clip'
    python scripts/mutations.py --only clip,adam  # ... 'clip' or 'adam'
    python scripts/mutations.py --list

Each mutant replaces one exact piece of text in the package (a constant, a term, an
input, an initialization, a protocol detail). The package and the tests are copied to a
temporary folder, the mutant is applied there (the working tree is never touched), and
the protocol, model, training and multi-process tests (SUITE) run against the copy, the
quickest first (the protocol's, then the baselines', which share the SRNN module's parts),
stopping at the first failure. A mutant is caught when at least one test fails; the table
names the first. The unmutated copy must pass first, so that a failure is the
mutant's doing.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ["tests/test_protocol.py", "tests/test_baselines.py", "tests/test_train.py", "tests/test_fidelity.py",
         "tests/test_model.py", "tests/test_distributed.py"]

# (name, what it breaks, file, text, replacement)
MUTANTS = [
    ("slope", "leaky ReLU slope 1/4 instead of 1/3", "srnn/models/model.py",
     "F.leaky_relu(h, 1 / 3)", "F.leaky_relu(h, 1 / 4)"),
    ("clip", "clip the nonlinearity at +2.5 instead of +3", "srnn/models/model.py",
     "-3.0, 3.0)", "-3.0, 2.5)"),
    ("var-floor", "latent variance floor 1e-5 instead of 1e-6", "srnn/models/model.py",
     "VAR_FLOOR = 1e-6", "VAR_FLOOR = 1e-5"),
    ("std-floor", "sample z with exp(logvar / 2), without the floor", "srnn/models/model.py",
     "return torch.sqrt(torch.exp(logvar) + VAR_FLOOR)", "return torch.exp(0.5 * logvar)"),
    ("kl-floor", "KL without the floor on var_q", "srnn/models/model.py",
     "var_q, var_p = torch.exp(logvar_q) + VAR_FLOOR,", "var_q, var_p = torch.exp(logvar_q),"),
    ("kl-term", "KL without its -1", "srnn/models/model.py",
     "(var_q + (mu_q - mu_p) ** 2) / var_p - 1)", "(var_q + (mu_q - mu_p) ** 2) / var_p)"),
    ("bernoulli-eps", "Bernoulli log-likelihood with eps 1e-6", "srnn/models/model.py",
     "BERNOULLI_EPS = 1e-7", "BERNOULLI_EPS = 1e-6"),
    ("bernoulli-term", "Bernoulli log-likelihood without its (1 - x) term", "srnn/models/model.py",
     "(x * torch.log(p + BERNOULLI_EPS) + (1 - x) * torch.log(1 - p + BERNOULLI_EPS)).sum(-1)",
     "(x * torch.log(p + BERNOULLI_EPS)).sum(-1)"),
    ("gauss-2pi", "Gaussian output log-likelihood without log 2 pi", "srnn/models/model.py",
     "-0.5 * (LOG_2PI + logvar + (x - mu) ** 2", "-0.5 * (logvar + (x - mu) ** 2"),
    ("emission-d", "the emission sees z_t but not d_t", "srnn/models/model.py",
     "self.emission(d_k, dropout(z_seq", "self.emission(torch.zeros_like(d_k), dropout(z_seq"),
    ("d-input", "d_t runs on phi(x_t) instead of phi(u_t)", "srnn/models/model.py",
     "self.gru_d(dropout(phi_u,", "self.gru_d(dropout(phi_x,"),
    ("a-input", "the inference network does not see phi(x_t)", "srnn/models/model.py",
     "dx = torch.cat([d, dropout(phi_x,", "dx = torch.cat([d, 0 * dropout(phi_x,"),
    ("resq-units", "Resq's prior mean from the posterior's hidden units", "srnn/models/model.py",
     "mu = mu + self.prior.mu(h[:, n:])", "mu = mu + self.prior.mu(h[:, :self.cfg.mlp_dim])"),
    ("prior-z", "the prior conditioned on z_t instead of z_{t-1}", "srnn/models/model.py",
     "z_prev = torch.cat([z0[:, None], z_seq[:, :-1]], 1)", "z_prev = z_seq"),
    ("log-w", "importance weight without log p(z_t | .)", "srnn/models/model.py",
     "log_w = ll + floored_log_prob(z_seq, mu_p, logvar_p) -", "log_w = ll -"),
    ("mask", "the log-likelihood not masked", "srnn/models/model.py",
     "return Output(ll=ll * m_k,", "return Output(ll=ll,"),
    ("init-normal", "Glorot-normal where the original draws Glorot-uniform", "srnn/models/model.py",
     "glorot = nn.init.xavier_normal_ if id(p) in normal else nn.init.xavier_uniform_",
     "glorot = nn.init.xavier_normal_"),
    ("init-stacked", "each head's two hidden layers drawn as one matrix", "srnn/models/model.py",
     "p.data.split(side_by_side.get(id(p), [len(p)]), 0)", "p.data.split([len(p)], 0)"),
    ("filter-layers", "the filtering network with one layer whatever filter_layers says", "srnn/models/model.py",
     "self.mlp_a = MLP(cfg.d_dim + f, cfg.d_dim, cfg.filter_layers)", "self.mlp_a = MLP(cfg.d_dim + f, cfg.d_dim, 1)"),
    ("gru-bias", "gru_hidden_bias read the wrong way round", "srnn/models/model.py",
     "if not cfg.gru_hidden_bias:", "if cfg.gru_hidden_bias:"),
    ("music-size", "the music preset's GRUs with 256 units instead of 300", "srnn/config.py",
     'x_dim=88, output="bernoulli", d_dim=300,', 'x_dim=88, output="bernoulli", d_dim=256,'),
    ("lr-decay", "the learning rate decays one epoch early", "srnn/training/schedule.py",
     "max(0, epoch + 1 - cfg.lr_decay_start)", "max(0, epoch + 2 - cfg.lr_decay_start)"),
    # The baselines (srnn/models/baselines.py).
    ("vrnn-prior-h", "VRNN's prior ignores h_{t-1}", "srnn/models/baselines.py",
     "mu_p, logvar_p = self.prior_params(h_out)", "mu_p, logvar_p = self.prior_params(torch.zeros_like(h_out))"),
    ("vrnn-emission-h", "VRNN's emission does not see h_{t-1}", "srnn/models/baselines.py",
     "self.emission(h_out, phi_z_out)", "self.emission(torch.zeros_like(h_out), phi_z_out)"),
    ("vrnn-posterior-x", "VRNN's posterior does not see x_t", "srnn/models/baselines.py",
     "per_step(self.posterior.c_part(phi_x))", "per_step(self.posterior.c_part(torch.zeros_like(phi_x)))"),
    ("vrnn-posterior-h", "VRNN's posterior does not see h_{t-1}", "srnn/models/baselines.py",
     "act(torch.addmm(pre_q_t, h, w_q.t()))", "act(pre_q_t)"),
    ("vrnn-h-z", "VRNN's h is not fed z", "srnn/models/baselines.py",
     "gru_step(torch.addmm(pre_h_t, phi_z, w_z.t()), h, w_hh, b_hh)", "gru_step(pre_h_t, h, w_hh, b_hh)"),
    ("vrnn-h-x", "VRNN's recurrence reads x_t instead of x_{t-1} = u_t", "srnn/models/baselines.py",
     "pre_h = per_step(F.linear(phi_u,", "pre_h = per_step(F.linear(phi_x,"),
    ("vrnn-kl", "VRNN's KL (and log-weight) against the posterior itself: no KL term", "srnn/models/baselines.py",
     "mu_q, logvar_q, mu_p, logvar_p, mask.repeat(K, 1)", "mu_q, logvar_q, mu_q, logvar_q, mask.repeat(K, 1)"),
    ("vrnn-prior-flag", "vrnn_prior read the wrong way round", "srnn/models/baselines.py",
     'if cfg.vrnn_prior == "learned" else None', 'if cfg.vrnn_prior == "standard" else None'),
    ("vrnn-state", "VRNN drops the carried h", "srnn/models/baselines.py",
     "h, z = state.h, state.z", "h, z = 0 * state.h, state.z"),
    ("vrnn-gru", "the GRU step's update gate the wrong way round", "srnn/models/baselines.py",
     "return cand + s * (h - cand)", "return h + s * (cand - h)"),
    ("vrnn-generate", "VRNN generates z without the prior's mean", "srnn/models/baselines.py",
     "z = mu + std(logvar) * torch.randn_like(mu)", "z = std(logvar) * torch.randn_like(mu)"),
    ("vrnn-init", "VRNN's emission MLP drawn Glorot-uniform", "srnn/models/baselines.py",
     'zero biases (see ``srnn.models.model.initialize``)."""\n        initialize(self, normal=(self.emission.mlp,))',
     'zero biases (see ``srnn.models.model.initialize``)."""\n        initialize(self)'),
    ("vrnn-drop-q", "VRNN's posterior reads h without its dropout mask", "srnn/models/baselines.py",
     "h_q = h if keep_t is None else h * keep_t", "h_q = h"),
    ("vrnn-drop-prior", "VRNN's prior reads h without its dropout mask", "srnn/models/baselines.py",
     "self.prior_params(h_out)", "self.prior_params(h_seq)"),
    ("vrnn-drop-emit", "VRNN's emission reads h without its dropout mask", "srnn/models/baselines.py",
     "self.emission(h_out, phi_z_out)", "self.emission(h_seq, phi_z_out)"),
    ("vrnn-drop-z", "VRNN's emission reads z without its dropout mask", "srnn/models/baselines.py",
     "phi_z_out = phi_z_seq if keep_z is None else", "phi_z_out = phi_z_seq if True else"),
    ("vrnn-drop-eval", "VRNN's dropout acts in eval mode too", "srnn/models/baselines.py",
     "if not (self.training and p > 0):", "if not p > 0:"),
    ("rnn-input", "the RNN reads x_t instead of x_{t-1} = u_t", "srnn/models/baselines.py",
     "self.gru_h(self.phi(u), state.h", "self.gru_h(self.phi(x), state.h"),
    ("rnn-state", "the RNN drops the carried h", "srnn/models/baselines.py",
     "self.phi(u), state.h[None].contiguous())", "self.phi(u), 0 * state.h[None].contiguous())"),
    ("rnn-log-w", "the RNN's log-weights are not its log-likelihood", "srnn/models/baselines.py",
     "kl=torch.zeros_like(ll), log_w=ll,", "kl=torch.zeros_like(ll), log_w=ll / samples,"),
    ("vrnn-width", "the TIMIT VRNN preset with 1024 GRU units (SRNN's) instead of 1483", "srnn/config.py",
     '("vrnn", "timit"): 1483', '("vrnn", "timit"): 1024'),
    ("resume-state", "a resumed run does not restore the carried state", "srnn/training/train.py",
     'state = None if ck["state"] is None else model.state_type(', 'state = None if True else model.state_type('),
    ("gmm-weights", "the mixture's weights not normalized (logits for log-weights)", "srnn/models/model.py",
     "torch.log_softmax(logits, -1)", "logits"),
    ("gmm-component", "every component scored with the first's variance", "srnn/models/model.py",
     "gaussian_log_prob(x.unsqueeze(-2), mu, logvar)", "gaussian_log_prob(x.unsqueeze(-2), mu, logvar[..., :1, :])"),
    # The training protocol (tests/test_protocol.py)
    ("clip-order", "element-wise clipping before the total norm", "srnn/training/train.py",
     "        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)\n"
     "        torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)\n",
     "        torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)\n"
     "        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)\n"),
    ("clip-value-gone", "no element-wise clipping", "srnn/training/train.py",
     "        torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)\n", ""),
    ("clip-music", "music clips elements at 100 instead of 10", "srnn/config.py",
     "clip_norm=1.0, clip_value=10.0,", "clip_norm=1.0, clip_value=100.0,"),
    ("clip-speech", "speech clips the total norm at 300 instead of 3000", "srnn/config.py",
     "clip_norm: float = 3000.0", "clip_norm: float = 300.0"),
    ("adam-betas", "Adam with beta2 = 0.99", "srnn/training/train.py",
     "torch.optim.Adam(self.model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)",
     "torch.optim.Adam(self.model.parameters(), lr=cfg.lr, eps=cfg.adam_eps, betas=(0.9, 0.99))"),
    ("adam-eps", "Adam's epsilon 1e-8 (torch's default) instead of the original's 1e-4", "srnn/config.py",
     "adam_eps: float = 1e-4", "adam_eps: float = 1e-8"),
    ("decay-speech", "speech's learning rate divided by 1.2 an epoch instead of 1.1", "srnn/config.py",
     "lr_decay: float = 1.1", "lr_decay: float = 1.2"),
    ("decay-start-speech", "speech's decay from epoch 15 instead of 16", "srnn/config.py",
     "lr_decay_start: int = 16", "lr_decay_start: int = 15"),
    ("carry", "the training loop never carries the state to the next window", "srnn/training/train.py",
     "None if batch.reset else self.state", "None"),
    ("epoch-reset", "the carried state is not reset at a new epoch", "srnn/training/train.py",
     '        self.state = None\n        if record.get("best"):', '        if record.get("best"):'),
    ("valid-carry", "validation rows continue one another instead of starting from zero", "srnn/datasets/music.py",
     "valid = [Batch(b.x, b.u, b.mask, reset=True) for b in rows]", "valid = list(rows)"),
    ("patience", "patience counted one epoch longer", "srnn/training/schedule.py",
     '["epoch"] < cfg.patience', '["epoch"] <= cfg.patience'),
    ("epochs", "40 epochs at least instead of 50", "srnn/config.py",
     "epochs: int = 50 ", "epochs: int = 40 "),
    ("max-epochs", "never past 100 epochs instead of 200", "srnn/config.py",
     "max_epochs: int = 200", "max_epochs: int = 100"),
    ("blizzard-lr", "Blizzard's learning rate 1e-3 instead of 3e-4", "srnn/config.py",
     "batch_size=128, lr=3e-4,", "batch_size=128, lr=1e-3,"),
    ("blizzard-batch", "Blizzard's batch 64 instead of 128", "srnn/config.py",
     "batch_size=128, lr=3e-4,", "batch_size=64, lr=3e-4,"),
    ("blizzard-kl", "Blizzard's KL temperature grows by 3e-4 an update instead of 1e-4", "srnn/config.py",
     "lr=3e-4, kl_increment=1e-4,", "lr=3e-4, kl_increment=3e-4,"),
    # The test bound over several sample paths (srnn/training/evaluate.py)
    ("test-se", "the test ELBO's standard error divided by K instead of sqrt(K)", "srnn/training/evaluate.py",
     "std().item() / draws ** 0.5", "std().item() / draws"),
    ("test-paths", "the test ELBO from the first sample path only", "srnn/training/evaluate.py",
     "elbo = (ll - kl).mean(0)", "elbo = (ll - kl)[0]"),
    ("test-seed", "the test ELBO's sample paths drawn without seeding with the run's seed",
     "srnn/training/evaluate.py", "    torch.manual_seed(seed)\n    return evaluate(", "    return evaluate("),
    # Training over several processes (srnn/training/distributed.py).
    ("ddp-scale", "each rank's loss not scaled by the number of ranks: half the gradient", "srnn/training/train.py",
     "(loss * world.size if world.active else loss).backward()", "loss.backward()"),
    ("ddp-rng", "a resumed rank draws from rank 0's generator", "srnn/training/train.py",
     'ck["rank_rng"][world.rank] if world.active', 'ck["rank_rng"][0] if world.active'),
    ("ddp-noise", "each rank draws its own noise instead of its rows of the batch's", "srnn/training/train.py",
     "generator=noise, device=device)[:, world.row_slice(B)]", "device=device)[:, world.row_slice(B)]"),
    ("fp32-tf32", "precision fp32 leaves cuDNN's default TF32 on", "srnn/training/precision.py",
     "matmul.allow_tf32 = cudnn.allow_tf32 = enabled", "matmul.allow_tf32 = enabled"),
    ("rnn-iwae-draws", "the RNN's bound drawn K times (the same pass K times)", "srnn/training/evaluate.py",
     "draws = 1 if getattr(model, \"noise_dim\", None) == 0 else samples", "draws = samples"),
]


def workspace(tmp: Path) -> Path:
    """A copy of the package and its tests, importable from ``tmp``."""
    for folder in ("srnn", "tests"):
        shutil.copytree(ROOT / folder, tmp / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp


def run_suite(tmp: Path) -> tuple[bool, str]:
    """Run the model tests in ``tmp``; return (passed, the first failing test or '')."""
    env = {**os.environ, "PYTHONPATH": str(tmp), "PYTHONDONTWRITEBYTECODE": "1"}
    check = subprocess.run([sys.executable, "-c", "import srnn; print(srnn.__file__)"], cwd=tmp, env=env,
                           capture_output=True, text=True)
    if not check.stdout.strip().startswith(str(tmp)):
        raise SystemExit(f"the copy in {tmp} does not shadow the installed package ({check.stdout.strip()})")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-rf", *SUITE],
                          cwd=tmp, env=env, capture_output=True, text=True)
    failed = re.findall(r"^FAILED (\S+)", done.stdout, re.M)
    return done.returncode == 0, failed[0].split(" ")[0] if failed else ""


def mutate(tmp: Path, file: str, text: str, replacement: str) -> None:
    path = tmp / file
    source = path.read_text()
    if source.count(text) != 1:
        raise SystemExit(f"mutant text found {source.count(text)} times in {file} (needs exactly one): {text!r}")
    path.write_text(source.replace(text, replacement))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="", help="run only the mutants whose name contains this (or one of these, "
                                               "comma-separated)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = p.parse_args()
    chosen = [m for m in MUTANTS if any(part in m[0] for part in args.only.split(","))]
    if args.list:
        for name, what, file, *_ in chosen:
            print(f"{name:15s} {file:16s} {what}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        passed, failed = run_suite(workspace(Path(tmp) / "clean"))
        if not passed:
            raise SystemExit(f"the unmutated suite fails ({failed}): fix it before checking mutants")
    rows, survivors = [], []
    for name, what, file, text, replacement in chosen:
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            copy = workspace(Path(tmp) / name)
            mutate(copy, file, text, replacement)
            passed, failed = run_suite(copy)
        if passed:
            survivors.append(name)
        rows.append(f"| {name} | {what} | {'SURVIVED' if passed else 'caught'} | "
                    f"{failed.split('::', 1)[-1] if failed else '-'} | {time.time() - t0:.0f} s |")
        print(rows[-1], flush=True)
    print("\n| mutant | what it breaks | result | first failing test | time |\n|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{len(rows) - len(survivors)} of {len(rows)} mutants caught"
          + (f"; survived: {', '.join(survivors)}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
