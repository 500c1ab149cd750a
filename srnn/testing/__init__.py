"""Test oracles: second, step-by-step implementations of SRNN (``reference``) and of its
baselines (``reference_baselines``), written from the equations. They share no code with
the models they check and import nothing from the fast path; the tests compare the two,
and the book's Implementation page shows them."""
