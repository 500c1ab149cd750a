"""The models: SRNN (``model``), the VRNN and RNN baselines built from its parts
(``baselines``, with ``build_model`` for any config), the training objective
(``objective``) and the parameter counts of the paper's presets (``sizes``)."""
