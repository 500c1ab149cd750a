"""One flat, typed configuration for a model and its training run.

Presets hold the paper's settings (supplementary section 1 and FACTS.md section 2);
anything can be overridden by keyword, and a config round-trips through JSON so that a
run can always be audited or resumed from what it saved.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields

from .errors import UserError

MODEL_KINDS = ("srnn", "vrnn", "rnn")
VRNN_PRIORS = ("learned", "standard")
OUTPUTS = ("gaussian", "bernoulli", "gmm")
INFERENCES = ("smoothing", "filtering")
KL_SCHEDULES = ("linear_update", "linear_epochs", "constant")
ADAM_EPS_STYLES = ("torch", "lasagne")
INITS = ("original", "stacked")
VALID_STATES = ("zero", "carry")
TEST_PASSES = ("whole", "windows")
PRECISIONS = ("fp32", "tf32", "bf16")

# What a stored config that predates a field ran with. A record or checkpoint written
# before these fields existed used this project's first protocol, which departed from the
# original code here (before the original code's protocol became the default) and had no
# early stopping; ``from_dict`` fills them in so
# that an old run is never read as a run of today's defaults.
BEFORE_FIELDS = {"init": "stacked", "filter_layers": 1, "valid_state": "carry", "test_pass": "windows",
                 "patience": 0}


class ConfigError(UserError, ValueError):
    """A setting out of its range, of the wrong type or unknown."""


class ConfigTypeError(ConfigError, TypeError):
    """A setting of the wrong type."""


# Each numeric field's range: (name, bound, ">=" or ">").
RANGES = [*((name, 1, ">=") for name in ("x_dim", "d_dim", "z_dim", "mlp_dim", "batch_size", "window", "epochs",
                                         "max_epochs", "valid_every", "kl_epochs", "filter_layers",
                                         "gmm_components")),
          *((name, 0, ">=") for name in ("phi_layers", "emission_layers", "lr_decay_start", "patience", "kl_start",
                                         "kl_increment")),
          *((name, 0, ">") for name in ("lr", "adam_eps", "clip_norm", "clip_value")),
          ("lr_decay", 1, ">=")]


@dataclass
class Config:
    """Sizes follow the paper's names: d (deterministic GRU), z (latent), a (inference GRU)."""

    name: str = "custom"             # the preset this config started from
    model: str = "srnn"              # "srnn", or a baseline (srnn/models/baselines.py): "vrnn" or "rnn"
    # --- model (FACTS.md section 1) ---
    x_dim: int = 200                 # values per step: 200-sample audio frames or 88 piano keys
    output: str = "gaussian"         # p(x_t | z_t, d_t): "gaussian" (speech) or "bernoulli" (music);
                                     # the baselines also "gmm" (speech): a mixture of diagonal Gaussians
    gmm_components: int = 20         # the mixture's components, each over the whole frame (Chung et al.'s 20)
    d_dim: int = 1024                # GRU units, for d_t and for the backward a_t
    z_dim: int = 256                 # latent units of z_t
    mlp_dim: int = 512               # units of every dense hidden layer
    phi_layers: int = 2              # layers of the feature extractor phi shared by u_t and x_t
    emission_layers: int = 2         # hidden layers of the emission MLP on [d_t, z_t]
    inference: str = "smoothing"     # "smoothing" (backward GRU) or "filtering" (MLP)
    filter_layers: int = 2           # layers of the filtering MLP a_t (the original's num_layers_mlp)
    resq: bool = True                # mu_q = mu_p + delta (residual posterior mean)
    small_last_init: bool = True     # Uniform(-1e-3, 1e-3) last layers (the speech models)
    gru_hidden_bias: bool = True     # False: no bias on the GRUs' hidden side, as Lasagne's GRU
    drop_phi_u: float = 0.0          # dropout on phi(u_t) before the d GRU (the original's p_emb_u_drop)
    drop_phi_x: float = 0.0          # dropout on phi(x_t) in the inference network (p_emb_x_drop)
    drop_d: float = 0.0              # dropout on d_t where it feeds a_t, the prior and the emission (p_d_drop);
                                     # VRNN: on h_t where it feeds the prior, the posterior and the emission
    drop_z: float = 0.0              # dropout on z_t where it feeds the emission (p_z_drop); VRNN: the same
    init: str = "original"           # "original": every layer as the original code initializes it;
                                     # "stacked": Glorot-normal everywhere, each head's two hidden
                                     # layers drawn as one stacked matrix (this project's first protocol)
    vrnn_prior: str = "learned"      # VRNN's p(z_t | h_{t-1}): "learned", or "standard" N(0, I) (VRNN-I)
    # --- training (FACTS.md section 2) ---
    batch_size: int = 64             # sequences per update
    window: int = 40                 # truncated-BPTT steps per update (0.5 s of speech)
    lr: float = 1e-3                 # Adam's learning rate
    adam_eps: float = 1e-4           # Adam's epsilon
    adam_eps_style: str = "torch"    # "torch": eps added to the bias-corrected sqrt(v);
                                     # "lasagne": to the uncorrected sqrt(v), as the original code
    epochs: int = 50                 # epochs to train at least
    patience: int = 0                # then go on until the best validation epoch is this many
                                     # epochs old (0: stop after `epochs`)
    max_epochs: int = 200            # never train past this many epochs
    lr_decay_start: int = 16         # epochs at the full rate, then lr /= lr_decay each epoch
    lr_decay: float = 1.1            # the learning rate's divisor per epoch after lr_decay_start
    clip_norm: float = 3000.0        # clip the total gradient norm to this, then ...
    clip_value: float = 1000.0       # ... every gradient element to [-clip_value, clip_value]
    kl_schedule: str = "linear_update"  # KL temperature: "linear_update", "linear_epochs" or "constant"
    kl_start: float = 0.2            # the KL temperature at the start
    kl_increment: float = 3e-4       # its growth per update, for "linear_update"
    kl_epochs: int = 20              # its ramp length in epochs, for "linear_epochs"
    valid_every: int = 1             # epochs between validations
    valid_state: str = "zero"        # "zero": every validation row (window) starts from a zero
                                     # state, as the original; "carry": rows continue one another
    test_pass: str = "whole"         # speech test sequences: "whole": one pass each, the first frame
                                     # only an input (the original's TIMIT test); "windows": windows
                                     # of `window` steps carrying the state, every frame scored
    seed: int = 1234                 # seeds the initialization, the data order and the noise
    device: str = "auto"             # "auto" (the GPU when there is one), "cpu", "cuda" or "cuda:N"
    precision: str = "fp32"          # training's products: "fp32" (cuDNN's GRUs too), "tf32" (a GPU's
                                     # TF32 products and GRUs) or "bf16" (autocast); numbers move;
                                     # evaluation is fp32
    compile: bool = False            # run each step of the z-chain through torch.compile (fused
                                     # kernels; the GRUs stay as they are); numbers move by rounding

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            kind = {"int": int, "float": (int, float), "bool": bool, "str": str}[f.type]
            if not isinstance(value, kind) or (f.type != "bool" and isinstance(value, bool)):
                raise ConfigTypeError(f"config field {f.name!r} must be {f.type}, got {value!r}")
            if f.type == "float" and not math.isfinite(value):
                raise ConfigError(f"config field {f.name!r} must be a finite number, got {value!r}")
        for name, low, what in RANGES:
            value = getattr(self, name)
            if value < low or (what == ">" and value == low):
                raise ConfigError(f"config field {name!r} must be {what} {low}, got {value!r}")
        for name, allowed in (("model", MODEL_KINDS), ("vrnn_prior", VRNN_PRIORS), ("output", OUTPUTS),
                              ("inference", INFERENCES), ("kl_schedule", KL_SCHEDULES),
                              ("adam_eps_style", ADAM_EPS_STYLES), ("init", INITS), ("valid_state", VALID_STATES),
                              ("test_pass", TEST_PASSES), ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"config field {name!r} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("drop_phi_u", "drop_phi_x", "drop_d", "drop_z"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"config field {name!r} is a dropout probability in [0, 1), "
                                  f"got {getattr(self, name)!r}")
        if self.max_epochs < self.epochs:
            raise ConfigError(f"max_epochs ({self.max_epochs}) must be at least epochs ({self.epochs})")
        if self.kl_start > 1:
            raise ConfigError(f"config field 'kl_start' is a KL weight in [0, 1], got {self.kl_start!r}")
        self._check_model_options()

    def _check_model_options(self):
        """Options that only one model has are refused on the others, rather than ignored."""
        if self.model != "vrnn" and self.vrnn_prior != "learned":
            raise ConfigError(f"config field 'vrnn_prior' is an option of model 'vrnn', not of {self.model!r}")
        if self.model == "rnn" and self.compile:
            raise ConfigError("config field 'compile' compiles the step of a z-chain, and model 'rnn' has none: "
                              "leave it false")
        if self.model == "srnn":
            if self.output == "gmm":
                raise ConfigError("output 'gmm' is the baselines' (VRNN-GMM, RNN-GMM); SRNN's output is the paper's: "
                                  "gaussian or bernoulli")
            return
        srnn_only = {"inference": "smoothing", "resq": True, "drop_phi_u": 0.0, "drop_phi_x": 0.0}
        if self.model == "rnn":
            srnn_only.update(drop_d=0.0, drop_z=0.0)
        changed = [f"{k}={getattr(self, k)!r}" for k, v in srnn_only.items() if getattr(self, k) != v]
        if changed:
            kept = "the dropouts at 0" if self.model == "rnn" else "drop_phi_u and drop_phi_x at 0 (VRNN has drop_d " \
                                                                   "and drop_z)"
            raise ConfigError(f"model {self.model!r} has no SRNN variants or these dropout options, but "
                              f"{', '.join(changed)} set: leave the variant at smooth+Resq and {kept}")

    @property
    def variant(self) -> str:
        """The paper's name for the model variant, e.g. 'smooth+Resq'; a baseline's name ('VRNN',
        'VRNN-I' for the standard normal prior, 'RNN') for the other models."""
        if self.model != "srnn":
            name = {"vrnn": "VRNN-I" if self.vrnn_prior == "standard" else "VRNN", "rnn": "RNN"}[self.model]
            return name + ("-GMM" if self.output == "gmm" else "")
        return ("smooth" if self.inference == "smoothing" else "filt") + ("+Resq" if self.resq else "")

    def replace(self, **overrides) -> Config:
        _check_names(overrides)
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """A stored config (a record's or a checkpoint's). Fields it lacks because it was
        written before they existed take the values that ran then (BEFORE_FIELDS), the
        others their defaults."""
        _check_names(data)
        return cls(**{**BEFORE_FIELDS, **data})

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls.from_dict(json.loads(text))


def field_help() -> dict[str, tuple[object, str]]:
    """Every config field's default and meaning, read from the comments beside the fields
    of :class:`Config` (so the command line's help cannot drift from the code)."""
    import inspect

    defaults = {f.name: f.default for f in fields(Config)}
    found: dict[str, list[str]] = {}
    last = None
    for line in inspect.getsource(Config).splitlines():
        code, _, comment = line.partition("#")
        name = code.split(":")[0].strip()
        if name in defaults and "=" in code:
            last = name
            found[last] = [comment.strip()]
        elif last and not code.strip() and comment and not comment.startswith(" ---"):
            found[last].append(comment.strip())
        elif code.strip():
            last = None
    return {name: (defaults[name], " ".join(found.get(name, []))) for name in defaults}


def settings_help(preset_name: str | None = None) -> str:
    """The settings a command line can ``--set``, one line each with its value and meaning:
    the dataclass's defaults, or with ``preset_name`` that preset's values (a ``*`` marks
    those the preset changes); then the presets."""
    values = dataclasses.asdict(preset(preset_name)) if preset_name else {}
    lines = [f"  {name:16s} {json.dumps(values.get(name, default)):16s} "
             f"{'*' if name in values and values[name] != default else ' '} {meaning}"
             for name, (default, meaning) in field_help().items() if name != "name"]
    head = (f"settings of the preset {preset_name!r} (--preset {preset_name}; * marks a value the preset changes "
            f"from the default; --set FIELD=VALUE changes one):" if preset_name else
            "settings (--set FIELD=VALUE; the defaults below are the dataclass's, a preset changes some: "
            "srnn settings --preset NAME shows its values):")
    names = ", ".join(sorted({**PRESETS, **BASELINE_PRESETS}))
    return head + "\n" + "\n".join(lines) + f"\npresets (--preset): {names}"


def _check_names(data: dict) -> None:
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown}; known fields: {', '.join(sorted(known))}")


# The paper's settings. Speech: supplementary 1.1; music: supplementary 1.2 and the
# original code's run() defaults (FACTS.md section 2). Where the two disagree (TIMIT's KL
# schedule and training stream) the supplementary wins. lr_decay_start counts the epochs
# the original runs at the full rate (music 21, TIMIT 16; Blizzard has no code: as TIMIT).
# Music trains the original's 50 epochs and then on while validation still improves.
PRESETS: dict[str, dict] = {
    "blizzard": dict(x_dim=200, output="gaussian", d_dim=2048, z_dim=256, mlp_dim=1024,
                     emission_layers=2, batch_size=128, lr=3e-4, kl_increment=1e-4,
                     seed=1234),
    "timit": dict(x_dim=200, output="gaussian", d_dim=1024, z_dim=256, mlp_dim=512,
                  emission_layers=2, batch_size=64, lr=1e-3, kl_increment=3e-4, seed=1234),
    "music": dict(x_dim=88, output="bernoulli", d_dim=300, z_dim=100, mlp_dim=500,
                  emission_layers=1, filter_layers=1, small_last_init=False, batch_size=16, window=100,
                  lr=1e-3, lr_decay_start=21, lr_decay=1.2, patience=10, clip_norm=1.0, clip_value=10.0,
                  kl_schedule="linear_epochs", kl_epochs=20, seed=123),
    # Small sizes for the embedded speech sample on a CPU; not a paper setting.
    "speech_small": dict(x_dim=200, output="gaussian", d_dim=64, z_dim=16, mlp_dim=64,
                         emission_layers=2, batch_size=16, lr=1e-3, kl_increment=2e-3,
                         epochs=40, lr_decay_start=30, seed=1234),
    # Small sizes for tests and CPU smoke runs; not a paper setting.
    "tiny": dict(x_dim=8, output="gaussian", d_dim=12, z_dim=4, mlp_dim=16,
                 batch_size=4, window=10, epochs=3, seed=0),
}


# The baselines (srnn/models/baselines.py): every setting of their domain's SRNN preset but the
# GRU's width, chosen so that the parameter count is that of SRNN smooth+Resq within 0.3%
# (tests/test_baselines.py prints the counts). VRNN-I is a VRNN preset with
# vrnn_prior="standard": without the prior's networks it has 8-12% fewer weights.
BASELINE_WIDTHS = {("vrnn", "music"): 300, ("rnn", "music"): 707, ("vrnn", "timit"): 1483, ("rnn", "timit"): 2021,
                   ("vrnn", "blizzard"): 2929, ("rnn", "blizzard"): 3957,
                   ("vrnn", "speech_small"): 79, ("rnn", "speech_small"): 137}
BASELINE_PRESETS: dict[str, dict] = {f"{model}_{domain}": {**PRESETS[domain], "model": model, "d_dim": d_dim}
                              for (model, domain), d_dim in BASELINE_WIDTHS.items()}
# The GMM outputs of Table 1 (VRNN-GMM, RNN-GMM): the Gaussian baselines' sizes with a
# mixture output layer, which alone adds mlp_dim x (2 x 20 x 200 + 20) weights: these
# presets are larger than SRNN (tests/test_baselines.py prints by how much).
BASELINE_PRESETS.update({f"{model}_gmm_{domain}": {**BASELINE_PRESETS[f"{model}_{domain}"], "output": "gmm"}
                  for (model, domain) in BASELINE_WIDTHS if domain != "music"})


def preset(name: str, **overrides) -> Config:
    """The named preset (see PRESETS and BASELINE_PRESETS) with keyword overrides."""
    known = {**PRESETS, **BASELINE_PRESETS}
    if name not in known:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(known)}")
    _check_names(overrides)
    return Config(**{"name": name, **known[name], **overrides})
