"""The committed records and what is read from them: the record store and the id of a run
(``store``), the code version and hardware a record names (``provenance``), the paper's
own numbers (``paper``), the comparisons between the two (``tables``), the tables and
lines the book and ``results/README.md`` show (``report``) and our models set side by side
(``model_comparison``)."""
